#include "core/config.hpp"
#include "core/refresh_advice.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <toml++/toml.h>

#include "core/path_trust.hpp"
#include "core/secret_variables.hpp"

namespace cltoken {

const char* to_string(VerifyMode m) {
  switch (m) {
  case VerifyMode::required: return "required";
  case VerifyMode::when_available: return "when_available";
  case VerifyMode::off: return "off";
  }
  return "when_available";
}

const char* to_string(CredentialKind k) {
  return k == CredentialKind::integration ? "integration" : "sales_channel";
}

bool CredentialConfig::same_identity(const CredentialConfig& other) const {
  const bool secrets_equal = client_secret.has_value() == other.client_secret.has_value() &&
                             (!client_secret || client_secret->equals(*other.client_secret));
  return kind == other.kind && client_id == other.client_id && scope == other.scope && secrets_equal;
}

const CredentialConfig* Config::find(std::string_view name) const {
  for (const auto& c : credentials)
    if (c.name == name) return &c;
  return nullptr;
}

ConfigEnvironment system_config_environment() {
  static const SystemNameResolver resolver;
  ConfigEnvironment env;
  env.getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  env.secret_variable = take_secret_variable;
  env.names = &resolver;
  return env;
}

namespace {

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

} // namespace

std::optional<AuthUrl> parse_auth_url(const std::string& text, std::string& error) {
  AuthUrl url;
  std::string rest;
  if (text.rfind("https://", 0) == 0) {
    url.tls = true;
    rest = text.substr(8);
  } else if (text.rfind("http://", 0) == 0) {
    url.tls = false;
    rest = text.substr(7);
  } else {
    error = "auth_url \"" + text + "\" must start with https://";
    return std::nullopt;
  }
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  url.base_path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!url.base_path.empty() && url.base_path.back() == '/') url.base_path.pop_back();
  if (authority.find('@') != std::string::npos || url.base_path.find_first_of("?#") != std::string::npos) {
    error = "auth_url \"" + text + "\" must be a plain scheme://host[:port][/path]";
    return std::nullopt;
  }
  if (!authority.empty() && authority.front() == '[') { // [IPv6]:port
    auto close = authority.find(']');
    if (close == std::string::npos) {
      error = "auth_url \"" + text + "\" has an unclosed [IPv6] host";
      return std::nullopt;
    }
    url.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') url.port = authority.substr(close + 2);
  } else {
    auto colon = authority.rfind(':');
    url.host = authority.substr(0, colon);
    if (colon != std::string::npos) url.port = authority.substr(colon + 1);
  }
  if (url.host.empty()) {
    error = "auth_url \"" + text + "\" has no host";
    return std::nullopt;
  }
  if (url.port.empty()) url.port = url.tls ? "443" : "80";
  char* end = nullptr;
  long port = std::strtol(url.port.c_str(), &end, 10);
  if (*end != '\0' || port < 1 || port > 65535) {
    error = "auth_url \"" + text + "\" has an invalid port";
    return std::nullopt;
  }
  if (!url.tls && !is_loopback_host(url.host)) {
    error = "auth_url \"" + text + "\" uses plain http:// to a host that is not loopback; use https://";
    return std::nullopt;
  }
  url.text = text;
  while (!url.text.empty() && url.text.back() == '/') url.text.pop_back();
  return url;
}

std::string describe(const CredentialConfig& c) {
  std::string allow;
  for (const auto& p : c.allow) allow += (allow.empty() ? "" : ",") + p.text;
  return fmt::format("{}: {} client_id={} secret={} scope={} allow=[{}]", c.name, to_string(c.kind), c.client_id,
                     c.secret_source, c.scope.empty() ? "(none)" : c.scope, allow);
}

namespace {

unsigned line_of(const toml::node& n) { return static_cast<unsigned>(n.source().begin.line); }

/// Reads one TOML table, checks types and ranges, and rejects keys it was not asked
/// about (a typo such as "clent_id" must not silently fall back to a default).
class TableReader {
public:
  TableReader(const std::string& file, const toml::table& table, std::string section)
      : file_(file), table_(table), section_(std::move(section)) {}

  [[noreturn]] void fail(unsigned line, const std::string& what) const { throw ConfigError(file_, line, what); }
  [[noreturn]] void fail_at(const toml::node& n, const std::string& what) const { fail(line_of(n), what); }
  [[noreturn]] void fail_here(const std::string& what) const { fail(line(), what); }

  unsigned line() const { return std::max(1u, line_of(table_)); }
  std::string qualified(std::string_view key) const {
    return section_.empty() ? std::string(key) : section_ + "." + std::string(key);
  }

  const toml::node* get(std::string_view key) {
    seen_.insert(std::string(key));
    return table_.get(key);
  }

  std::optional<std::string> string(std::string_view key) {
    const toml::node* n = get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_string()) fail_at(*n, qualified(key) + " must be a string");
    return n->as_string()->get();
  }

  std::string required_string(std::string_view key) {
    auto v = string(key);
    if (!v) fail_here("missing " + qualified(key));
    if (v->empty()) fail_at(*table_.get(key), qualified(key) + " must not be empty");
    return *v;
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) {
    const toml::node* n = get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_integer()) fail_at(*n, qualified(key) + " must be an integer");
    auto v = n->as_integer()->get();
    if (v < min || v > max) fail_at(*n, fmt::format("{} must be between {} and {}, not {}", qualified(key), min, max, v));
    return v;
  }

  std::optional<double> number(std::string_view key, double min, double max) {
    const toml::node* n = get(key);
    if (n == nullptr) return std::nullopt;
    double v = 0;
    if (n->is_floating_point())
      v = n->as_floating_point()->get();
    else if (n->is_integer())
      v = static_cast<double>(n->as_integer()->get());
    else
      fail_at(*n, qualified(key) + " must be a number");
    if (!(v >= min && v <= max)) fail_at(*n, fmt::format("{} must be between {} and {}, not {}", qualified(key), min, max, v));
    return v;
  }

  std::optional<bool> boolean(std::string_view key) {
    const toml::node* n = get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_boolean()) fail_at(*n, qualified(key) + " must be true or false");
    return n->as_boolean()->get();
  }

  const std::string& file() const { return file_; }

  std::optional<std::vector<std::pair<std::string, unsigned>>> strings(std::string_view key) {
    const toml::node* n = get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_array()) fail_at(*n, qualified(key) + " must be an array of strings");
    std::vector<std::pair<std::string, unsigned>> out;
    for (const auto& item : *n->as_array()) {
      if (!item.is_string()) fail_at(item, qualified(key) + " must contain only strings");
      out.emplace_back(item.as_string()->get(), std::max(line_of(item), line_of(*n)));
    }
    return out;
  }

  /// Every key not read so far is a mistake.
  void reject_unknown() const {
    for (auto&& [key, node] : table_) {
      if (!seen_.contains(std::string(key.str())))
        fail(std::max(1u, static_cast<unsigned>(key.source().begin.line)), "unknown key " + qualified(key.str()));
    }
  }

private:
  const std::string& file_;
  const toml::table& table_;
  std::string section_;
  std::set<std::string> seen_;
};

const toml::table& sub_table(const std::string& file, const toml::table& root, std::string_view name, const toml::table& empty) {
  const toml::node* n = root.get(name);
  if (n == nullptr) return empty;
  if (!n->is_table()) throw ConfigError(file, std::max(1u, line_of(*n)), "[" + std::string(name) + "] must be a table");
  return *n->as_table();
}

std::vector<Principal> principals(TableReader& r, std::string_view key, const ConfigEnvironment& env,
                                  std::optional<std::vector<Principal>> fallback, std::vector<std::string>* units = nullptr) {
  auto list = r.strings(key);
  if (!list) {
    if (fallback) return *fallback;
    r.fail_here("missing " + r.qualified(key) + " (who may fetch this token, e.g. [\"user:erp\", \"group:www-data\"])");
  }
  std::vector<Principal> out;
  for (const auto& [text, line] : *list) {
    std::string error;
    auto p = parse_principal(text, *env.names, error);
    if (!p) r.fail(line, r.qualified(key) + ": " + error);
    if (units != nullptr && (p->kind == Principal::Kind::unit || p->kind == Principal::Kind::slice))
      units->push_back(fmt::format("{}:{}: {} names {}", r.file(), line, r.qualified(key), p->text));
    out.push_back(std::move(*p));
  }
  return out;
}

std::string trim_trailing_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

/// Which permission bits make a secret file unacceptable.
enum class SecretFileRule {
  private_file, ///< any group or other bit: only the owner may touch it
  /// systemd credentials: systemd gives the service user read access through an ACL,
  /// which shows as group bits (the ACL mask), in a folder only that user can enter; so
  /// only "others" bits are refused there.
  systemd_credential,
};

/// Reads a secret file, refusing one that other users could read or replace.
Secret read_secret_file(TableReader& r, unsigned line, const std::string& key, const std::string& path,
                        SecretFileRule rule = SecretFileRule::private_file) {
  // O_NONBLOCK: a FIFO (or a device) named by mistake or malice must not hang the load;
  // and a reload runs on the event loop, where a hang would stop every client.
  // O_NOFOLLOW: a symbolic link in its place is refused, never followed.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0 && errno == ELOOP)
    r.fail(line, fmt::format("{}: {} is a symbolic link; name the file itself", key, path));
  if (fd < 0) r.fail(line, fmt::format("{}: cannot open {}: {}", key, path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    r.fail(line, fmt::format("{}: {} is not a regular file", key, path));
  }
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    ::close(fd);
    r.fail(line, fmt::format("{}: {} belongs to uid {}, not to the daemon (uid {}) or root; run: chown {} {}", key, path,
                             st.st_uid, ::geteuid(), ::geteuid(), path));
  }
  // The folders above it must be the daemon's or root's too (core/path_trust.hpp), or
  // another user could put a file of their choosing in its place.
  if (auto why = check_path_trust(path, "secret file", /*check_file=*/false)) {
    ::close(fd);
    r.fail(line, fmt::format("{}: {}", key, *why));
  }
  const mode_t refused = rule == SecretFileRule::private_file ? 077 : 007;
  if ((st.st_mode & refused) != 0) {
    ::close(fd);
    const bool private_file = rule == SecretFileRule::private_file;
    const bool readable = (st.st_mode & refused & 0444) != 0;
    const bool writable = (st.st_mode & refused & 0222) != 0;
    const char* how = readable && writable ? "readable and writable" : readable ? "readable" : writable ? "writable" : "executable";
    r.fail(line, fmt::format("{}: {} is {} by {} (mode {:04o}); run: chmod {} {}", key, path, how,
                             private_file ? "group or others" : "others", st.st_mode & 07777, private_file ? "600" : "o=",
                             path));
  }
  std::string content;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    content.append(buf, static_cast<std::size_t>(n));
    if (content.size() > 65536) break;
  }
  OPENSSL_cleanse(buf, sizeof buf);
  ::close(fd);
  Secret secret(trim_trailing_newlines(std::move(content)));
  if (secret.empty()) r.fail(line, fmt::format("{}: {} is empty", key, path));
  if (secret.size() > 4096) r.fail(line, fmt::format("{}: {} is larger than 4 KiB; is it the right file?", key, path));
  return secret;
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return name != "." && name != "..";
}

CredentialConfig load_credential(const std::string& file, const std::string& name, const toml::table& t,
                                 const ConfigEnvironment& env, bool config_private, std::vector<std::string>* units) {
  TableReader r(file, t, "credentials." + name);
  CredentialConfig c;
  c.name = name;
  c.line = r.line();
  if (!valid_name(name))
    r.fail_here("credential name \"" + name + "\" may contain only letters, digits, '-', '_' and '.' (at most 64)");
  auto kind = r.string("kind");
  if (!kind) r.fail_here("missing credentials." + name + ".kind (\"integration\" or \"sales_channel\")");
  if (*kind == "integration")
    c.kind = CredentialKind::integration;
  else if (*kind == "sales_channel")
    c.kind = CredentialKind::sales_channel;
  else
    r.fail_at(*t.get("kind"), "unknown credentials." + name + ".kind \"" + *kind + "\" (expected \"integration\" or \"sales_channel\")");
  c.client_id = r.required_string("client_id");
  c.scope = r.string("scope").value_or("");

  struct Source {
    const char* key;
    std::optional<std::string> value;
  };
  Source sources[] = {{"client_secret_file", r.string("client_secret_file")},
                      {"client_secret_env", r.string("client_secret_env")},
                      {"client_secret_credential", r.string("client_secret_credential")},
                      {"client_secret", r.string("client_secret")}};
  const Source* chosen = nullptr;
  for (const auto& s : sources) {
    if (!s.value) continue;
    if (chosen != nullptr)
      r.fail_at(*t.get(s.key), fmt::format("credentials.{}: both {} and {} are set; keep one", name, chosen->key, s.key));
    chosen = &s;
  }
  if (chosen != nullptr) {
    const std::string key = r.qualified(chosen->key);
    const unsigned line = line_of(*t.get(chosen->key));
    const std::string& v = *chosen->value;
    if (v.empty()) r.fail(line, key + " must not be empty");
    if (std::string_view(chosen->key) == "client_secret_file") {
      c.client_secret = read_secret_file(r, line, key, v);
      c.secret_source = "file " + v;
    } else if (std::string_view(chosen->key) == "client_secret_env") {
      auto value = env.secret_variable ? env.secret_variable(v) : env.getenv(v);
      if (!value || value->empty()) r.fail(line, fmt::format("{}: environment variable {} is not set or empty", key, v));
      c.client_secret = Secret(trim_trailing_newlines(*value));
      wipe(*value);
      c.secret_source = "env " + v;
    } else if (std::string_view(chosen->key) == "client_secret_credential") {
      auto dir = env.getenv("CREDENTIALS_DIRECTORY");
      if (!dir || dir->empty())
        r.fail(line, key + ": $CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the systemd unit)");
      if (v.find('/') != std::string::npos) r.fail(line, key + ": a credential name cannot contain '/'");
      if (v == "." || v == "..") r.fail(line, key + ": \"" + v + "\" is not a credential name");
      c.client_secret = read_secret_file(r, line, key, *dir + "/" + v, SecretFileRule::systemd_credential);
      c.secret_source = "credential " + v;
    } else {
      if (!config_private)
        r.fail(line, fmt::format("{}: an inline secret needs a config file that only its owner can read; run: chmod 600 {} "
                                 "(or use client_secret_file)", key, file));
      c.client_secret = Secret(v);
      c.secret_source = "inline";
      // The parsed table holds its own copy; it is ours (load_config's root), so wipe it.
      wipe(const_cast<std::string&>(t.get("client_secret")->as_string()->get()));
    }
  }
  for (auto& s : sources)
    if (s.value && std::string_view(s.key) == "client_secret") wipe(*s.value);
  if (c.kind == CredentialKind::integration && !c.client_secret)
    r.fail_here("credentials." + name + ": an integration needs a client secret "
                "(client_secret_file, client_secret_env, client_secret_credential or client_secret)");
  c.allow = principals(r, "allow", env, std::nullopt, units);
  r.reject_unknown();
  return c;
}

} // namespace

Config load_config(const std::string& path, const ConfigEnvironment& env) {
  Config cfg;
  cfg.path = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw ConfigError(path, 0, std::string("cannot read config: ") + std::strerror(errno));
  const bool config_private = (st.st_mode & 077) == 0;
  // Whoever can change the config chooses the allow lists and where secrets come from: it
  // and every folder above it must be the daemon's user's or root's alone.
  if (auto why = check_path_trust(path, "config file", /*check_file=*/true)) throw ConfigError(path, 0, *why);

  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw ConfigError(path, static_cast<unsigned>(e.source().begin.line), std::string(e.description()));
  }
  const toml::table empty;
  TableReader top(path, root, "");
  for (auto name : {"server", "upstream", "refresh", "log", "credentials", "customers", "store"}) (void)top.get(name);
  top.reject_unknown();

  { // [server]
    TableReader r(path, sub_table(path, root, "server", empty), "server");
    if (auto v = r.string("socket")) {
      if (v->empty() || v->front() != '/') r.fail_at(*r.get("socket"), "server.socket must be an absolute path");
      if (v->size() >= 108) r.fail_at(*r.get("socket"), "server.socket is longer than a Unix socket path may be (107 bytes)");
      cfg.server.socket = *v;
    }
    if (auto v = r.string("socket_mode")) {
      char* end = nullptr;
      long mode = std::strtol(v->c_str(), &end, 8);
      if (v->empty() || *end != '\0' || mode < 0 || mode > 0777)
        r.fail_at(*r.get("socket_mode"), "server.socket_mode must be an octal mode such as \"0660\"");
      if ((mode & 0600) != 0600) r.fail_at(*r.get("socket_mode"), "server.socket_mode must let the owner read and write (0600 at least)");
      cfg.server.socket_mode = static_cast<mode_t>(mode);
    }
    if (auto v = r.string("socket_group")) {
      if (!v->empty()) {
        auto gid = env.names->group(*v);
        if (!gid) r.fail_at(*r.get("socket_group"), "server.socket_group: no group named \"" + *v + "\" on this system");
        cfg.server.socket_group = *gid;
        cfg.server.socket_group_name = *v;
      }
    }
    std::string error;
    cfg.server.admin =
        principals(r, "admin", env, std::vector<Principal>{*parse_principal("uid:0", *env.names, error)}, &cfg.unit_principals);
    // Verifying a token reveals nothing the caller does not hold already.
    cfg.server.verify_allow = principals(r, "verify_allow", env, std::vector<Principal>{*parse_principal("*", *env.names, error)},
                                        &cfg.unit_principals);
    // Per-credential counters say how often each service works: admins and these only.
    cfg.server.metrics_allow = principals(r, "metrics_allow", env, std::vector<Principal>{}, &cfg.unit_principals);
    if (auto v = r.integer("max_connections", 1, 1000000)) cfg.server.max_connections = static_cast<std::size_t>(*v);
    if (auto v = r.integer("invalidate_burst", 1, 1000000)) cfg.server.invalidate_burst = static_cast<unsigned>(*v);
    if (auto v = r.integer("invalidate_interval_ms", 1, 3600000)) cfg.server.invalidate_interval = Millis(*v);
    if (auto v = r.integer("max_connections_per_peer", 0, 1000000)) cfg.server.max_connections_per_peer = static_cast<std::size_t>(*v);
    if (auto v = r.integer("admin_reserved_connections", 0, 1000000)) cfg.server.admin_reserved_connections = static_cast<std::size_t>(*v);
    else cfg.server.admin_reserved_connections = std::min(cfg.server.admin_reserved_connections, cfg.server.max_connections / 4);
    if (cfg.server.admin_reserved_connections >= cfg.server.max_connections)
      r.fail(r.get("admin_reserved_connections") ? line_of(*r.get("admin_reserved_connections")) : r.line(),
             fmt::format("server.admin_reserved_connections ({}) must be smaller than server.max_connections ({}), or no "
                         "peer but an admin could connect", cfg.server.admin_reserved_connections, cfg.server.max_connections));
    if (auto v = r.integer("max_requests_per_peer", 0, 1000000)) cfg.server.max_requests_per_peer = static_cast<std::size_t>(*v);
    if (auto v = r.integer("idle_timeout_ms", 100, 86400000)) cfg.server.idle_timeout = Millis(*v);
    if (auto v = r.integer("request_timeout_ms", 100, 600000)) cfg.server.request_timeout = Millis(*v);
    if (auto v = r.integer("max_header_bytes", 1024, 1048576)) cfg.server.max_header_bytes = static_cast<std::size_t>(*v);
    if (auto v = r.integer("max_body_bytes", 1024, 16777216)) cfg.server.max_body_bytes = static_cast<std::size_t>(*v);
    r.reject_unknown();
  }
  { // [upstream]
    TableReader r(path, sub_table(path, root, "upstream", empty), "upstream");
    std::string url = r.string("auth_url").value_or("https://auth.commercelayer.io");
    std::string error;
    auto parsed = parse_auth_url(url, error);
    if (!parsed) r.fail(r.get("auth_url") ? line_of(*r.get("auth_url")) : r.line(), "upstream." + error);
    cfg.upstream.auth_url = *parsed;
    cfg.upstream.ca_file = r.string("ca_file").value_or("");
    if (!cfg.upstream.ca_file.empty() && ::access(cfg.upstream.ca_file.c_str(), R_OK) != 0)
      r.fail_at(*r.get("ca_file"), fmt::format("upstream.ca_file: cannot read {}: {}", cfg.upstream.ca_file, std::strerror(errno)));
    if (auto v = r.integer("connect_timeout_ms", 10, 600000)) cfg.upstream.connect_timeout = Millis(*v);
    if (auto v = r.integer("request_timeout_ms", 10, 600000)) cfg.upstream.request_timeout = Millis(*v);
    if (auto v = r.integer("max_requests_per_minute", 1, 100000)) cfg.upstream.max_requests_per_minute = static_cast<unsigned>(*v);
    if (auto v = r.string("verify")) {
      if (*v == "required") cfg.upstream.verify = VerifyMode::required;
      else if (*v == "when_available") cfg.upstream.verify = VerifyMode::when_available;
      else if (*v == "off") cfg.upstream.verify = VerifyMode::off;
      else r.fail_at(*r.get("verify"), "upstream.verify must be \"required\", \"when_available\" or \"off\"");
    }
    // Commerce Layer writes its origin in `iss`; a proxy in front of it may need this set.
    cfg.upstream.issuer = r.string("issuer").value_or(cfg.upstream.auth_url.text);
    if (auto v = r.integer("jwks_min_interval_s", 1, 86400)) cfg.upstream.jwks_min_interval = Seconds(*v);
    if (auto v = r.integer("jwks_max_age_s", 5, 2592000)) cfg.upstream.jwks_max_age = Seconds(*v);
    if (auto v = r.integer("verify_skew_s", 0, 3600)) cfg.upstream.verify_skew = Seconds(*v);
    // Somewhere that lives as long as the boot, as the auth server's memory of this host
    // does not outlive a minute: systemd's RuntimeDirectory= by default.
    if (auto v = r.string("budget_path")) {
      cfg.upstream.budget_path = *v;
      cfg.upstream.budget_path_line = line_of(*r.get("budget_path"));
      if (!v->empty() && (v->front() != '/' || v->back() == '/'))
        r.fail_at(*r.get("budget_path"), "upstream.budget_path must be \"\" or the absolute path of a file");
    } else if (auto dir = env.getenv("RUNTIME_DIRECTORY"); dir && !dir->empty() && dir->front() == '/') {
      cfg.upstream.budget_path = dir->substr(0, dir->find(':')) + "/upstream.budget";
    }
    r.reject_unknown();
  }
  RefreshAdviceInput advice;
  { // [refresh]
    TableReader r(path, sub_table(path, root, "refresh", empty), "refresh");
    if (auto v = r.number("at", 0.05, 0.95)) cfg.refresh.at = *v;
    if (auto v = r.number("jitter", 0.0, 0.25)) cfg.refresh.jitter = *v;
    if (cfg.refresh.at - cfg.refresh.jitter <= 0 || cfg.refresh.at + cfg.refresh.jitter >= 1)
      r.fail_here("refresh.at +- refresh.jitter must stay strictly between 0 and 1");
    if (auto v = r.integer("min_ttl", 0, 86400)) cfg.refresh.min_ttl = Seconds(*v);
    if (auto v = r.integer("reissue_window_s", 0, 86400)) cfg.refresh.reissue_window = Seconds(*v);
    advice.at = cfg.refresh.at;
    advice.jitter = cfg.refresh.jitter;
    advice.min_ttl = cfg.refresh.min_ttl;
    advice.reissue_window = cfg.refresh.reissue_window;
    if (const toml::node* n = r.get("at")) advice.at_line = line_of(*n);
    if (const toml::node* n = r.get("min_ttl")) advice.min_ttl_line = line_of(*n);
    if (auto v = r.integer("backoff_initial_ms", 10, 3600000)) cfg.refresh.backoff_initial = Millis(*v);
    if (auto v = r.integer("backoff_max_ms", 10, 86400000)) cfg.refresh.backoff_max = Millis(*v);
    if (cfg.refresh.backoff_max < cfg.refresh.backoff_initial)
      r.fail_here("refresh.backoff_max_ms must not be smaller than refresh.backoff_initial_ms");
    r.reject_unknown();
  }
  { // [log]
    TableReader r(path, sub_table(path, root, "log", empty), "log");
    if (auto v = r.string("level")) {
      static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error"};
      if (!levels.contains(*v)) r.fail_at(*r.get("level"), "log.level must be one of trace, debug, info, warn, error");
      cfg.log.level = *v;
    }
    if (auto v = r.string("format")) {
      if (*v != "text" && *v != "json") r.fail_at(*r.get("format"), "log.format must be \"text\" or \"json\"");
      cfg.log.format = *v;
    }
    if (auto v = r.boolean("access")) cfg.log.access = *v;
    if (auto v = r.integer("access_per_minute", 1, 1000000)) cfg.log.access_per_minute = static_cast<unsigned>(*v);
    r.reject_unknown();
  }
  { // [customers]
    TableReader r(path, sub_table(path, root, "customers", empty), "customers");
    if (auto v = r.integer("max_sessions", 0, 10000000)) cfg.customers.max_sessions = static_cast<std::size_t>(*v);
    if (auto v = r.integer("max_sessions_per_peer", 0, 10000000)) cfg.customers.max_sessions_per_peer = static_cast<std::size_t>(*v);
    if (auto v = r.integer("max_memory_mib", 0, 1048576)) cfg.customers.max_memory_mib = static_cast<std::size_t>(*v);
    if (auto v = r.integer("login_burst", 1, 1000000)) cfg.customers.login_burst = static_cast<unsigned>(*v);
    if (auto v = r.integer("login_interval_ms", 1, 3600000)) cfg.customers.login_interval = Millis(*v);
    if (auto v = r.integer("idle_timeout_s", 60, 31536000)) cfg.customers.idle_timeout = Seconds(*v);
    r.reject_unknown();
  }
  { // [store] (docs/store.md)
    TableReader r(path, sub_table(path, root, "store", empty), "store");
    if (auto v = r.string("backend")) {
      if (*v != "memory" && *v != "file" && *v != "redis")
        r.fail_at(*r.get("backend"), "store.backend must be \"memory\", \"file\" or \"redis\"");
      cfg.store.backend = *v;
    }
    if (auto v = r.string("path")) cfg.store.path = *v;
    if (cfg.store.backend == "file") {
      const unsigned line = r.get("path") ? line_of(*r.get("path")) : r.line();
      if (cfg.store.path.empty() || cfg.store.path.front() != '/' || cfg.store.path.back() == '/')
        r.fail(line, "store.path must be the absolute path of a file, such as \"/var/lib/cl-tokend/state\"");
      const std::string dir = cfg.store.path.substr(0, std::max<std::size_t>(1, cfg.store.path.rfind('/')));
      struct stat dst {};
      if (::stat(dir.c_str(), &dst) != 0 || !S_ISDIR(dst.st_mode))
        r.fail(line, fmt::format("store.path: folder {} does not exist (systemd creates it with StateDirectory=cl-tokend)", dir));
    }
    cfg.store.key_file = r.string("key_file").value_or("");
    cfg.store.key_credential = r.string("key_credential").value_or("");
    if (!cfg.store.key_file.empty() && !cfg.store.key_credential.empty())
      r.fail_at(*r.get("key_credential"), "store: both key_file and key_credential are set; keep one");
    if (cfg.store.backend != "memory" && !cfg.store.key_file.empty()) {
      const unsigned line = line_of(*r.get("key_file"));
      cfg.store.key = read_secret_file(r, line, "store.key_file", cfg.store.key_file);
      cfg.store.key_source = "file " + cfg.store.key_file;
    } else if (cfg.store.backend != "memory" && !cfg.store.key_credential.empty()) {
      const unsigned line = line_of(*r.get("key_credential"));
      auto dir = env.getenv("CREDENTIALS_DIRECTORY");
      if (!dir || dir->empty())
        r.fail(line, "store.key_credential: $CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the systemd unit)");
      if (cfg.store.key_credential.find('/') != std::string::npos) r.fail(line, "store.key_credential: a credential name cannot contain '/'");
      cfg.store.key = read_secret_file(r, line, "store.key_credential", *dir + "/" + cfg.store.key_credential);
      cfg.store.key_source = "credential " + cfg.store.key_credential;
    }
    // The key protects tokens at rest and in Redis: a short one would be guessable.
    if (cfg.store.key && cfg.store.key->size() < 32)
      r.fail(line_of(*r.get(cfg.store.key_file.empty() ? "key_credential" : "key_file")),
             "store key must be at least 32 bytes (e.g. openssl rand -base64 32)");
    if (auto v = r.string("url")) cfg.store.url = *v;
    cfg.store.password_file = r.string("password_file").value_or("");
    cfg.store.ca_file = r.string("ca_file").value_or("");
    if (auto v = r.integer("timeout_ms", 10, 600000)) cfg.store.timeout = Millis(*v);
    if (auto v = r.integer("poll_ms", 10, 60000)) cfg.store.poll = Millis(*v);
    if (auto v = r.integer("reconnect_max_ms", 100, 3600000)) cfg.store.reconnect_max = Millis(*v);
    // Where the state file's generations are anchored: somewhere a copy of the state folder
    // (a backup, a snapshot) does not bring back. systemd's RuntimeDirectory= (kept across
    // restarts by RuntimeDirectoryPreserve=yes, emptied at boot) by default.
    if (auto v = r.string("generation_path")) {
      cfg.store.generation_path = *v;
      if (!v->empty() && (v->front() != '/' || v->back() == '/' || *v == cfg.store.path))
        r.fail_at(*r.get("generation_path"),
                  "store.generation_path must be \"\" or the absolute path of a file other than store.path");
    } else if (auto dir = env.getenv("RUNTIME_DIRECTORY"); dir && !dir->empty() && dir->front() == '/') {
      cfg.store.generation_path = dir->substr(0, dir->find(':')) + "/state.generation";
    }
    if (auto v = r.string("prefix")) {
      const bool ok = !v->empty() && v->size() <= 64 && std::all_of(v->begin(), v->end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':';
      });
      if (!ok) r.fail_at(*r.get("prefix"), "store.prefix may contain only letters, digits, '-', '_', '.' and ':' (1 to 64)");
      cfg.store.prefix = *v;
    }
    if (cfg.store.backend == "redis") {
      const unsigned url_line = r.get("url") ? line_of(*r.get("url")) : r.line();
      std::string error;
      auto url = parse_redis_url(cfg.store.url, error);
      if (!url) r.fail(url_line, "store.url " + error);
      if (url->password && !config_private)
        r.fail(url_line, fmt::format("store.url holds a password: that needs a config file only its owner can read; run: "
                                     "chmod 600 {} (or use store.password_file)", path));
      if (!cfg.store.password_file.empty()) {
        const unsigned line = line_of(*r.get("password_file"));
        if (url->password) r.fail(line, "store: both store.url and store.password_file give a password; keep one");
        url->password = read_secret_file(r, line, "store.password_file", cfg.store.password_file);
      }
      if (!cfg.store.ca_file.empty() && ::access(cfg.store.ca_file.c_str(), R_OK) != 0)
        r.fail_at(*r.get("ca_file"), fmt::format("store.ca_file: cannot read {}: {}", cfg.store.ca_file, std::strerror(errno)));
      cfg.store.redis = std::move(url);
    }
    r.reject_unknown();
  }
  if (const toml::node* creds = root.get("credentials")) {
    if (!creds->is_table()) throw ConfigError(path, std::max(1u, line_of(*creds)), "[credentials] must be a table of [credentials.NAME]");
    for (auto&& [key, node] : *creds->as_table()) {
      std::string name(key.str());
      if (!node.is_table())
        throw ConfigError(path, std::max(1u, line_of(node)), "credentials." + name + " must be a table [credentials." + name + "]");
      cfg.credentials.push_back(load_credential(path, name, *node.as_table(), env, config_private, &cfg.unit_principals));
    }
  }
  // Commerce Layer's default lifetimes: 2 h for an integration, 4 h for a sales channel.
  const bool any_integration = std::any_of(cfg.credentials.begin(), cfg.credentials.end(),
                                           [](const CredentialConfig& c) { return c.kind == CredentialKind::integration; });
  advice.shortest_lifetime = Seconds(any_integration || cfg.credentials.empty() ? 7200 : 14400);
  for (const auto& a : refresh_advice(advice)) cfg.warnings.push_back(fmt::format("{}:{}: {}", path, a.line, a.text));
  if (!cfg.upstream.budget_path.empty() &&
      (cfg.upstream.budget_path == cfg.store.path || cfg.upstream.budget_path == cfg.store.generation_path))
    throw ConfigError(path, std::max(1u, cfg.upstream.budget_path_line),
                      "upstream.budget_path must be a file of its own, not store.path or store.generation_path");
  if (cfg.store.backend != "memory") {
    // A stored token is sealed with a key derived from the client secret; a credential
    // without one (a sales channel) needs the store key instead.
    for (const auto& c : cfg.credentials)
      if (!c.client_secret && !cfg.store.key)
        throw ConfigError(path, c.line,
                          fmt::format("credentials.{} has no client secret to seal its stored token with: set "
                                      "store.key_file or store.key_credential (store.backend is \"{}\")",
                                      c.name, cfg.store.backend));
  }
  return cfg;
}

} // namespace cltoken

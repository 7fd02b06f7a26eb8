// load_config: the whole file, section by section, checked as a whole.
#include "core/config_reader.hpp"
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

using namespace config_detail;

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
      if ((mode & 0600) != 0600)
        r.fail_at(*r.get("socket_mode"), "server.socket_mode must let the owner read and write (0600 at least)");
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
    if (auto v = r.integer("max_connections_per_peer", 0, 1000000))
      cfg.server.max_connections_per_peer = static_cast<std::size_t>(*v);
    if (auto v = r.integer("admin_reserved_connections", 0, 1000000))
      cfg.server.admin_reserved_connections = static_cast<std::size_t>(*v);
    else cfg.server.admin_reserved_connections = std::min(cfg.server.admin_reserved_connections, cfg.server.max_connections / 4);
    if (cfg.server.admin_reserved_connections >= cfg.server.max_connections)
      r.fail(r.get("admin_reserved_connections") ? line_of(*r.get("admin_reserved_connections")) : r.line(),
             fmt::format("server.admin_reserved_connections ({}) must be smaller than server.max_connections ({}), or no "
                         "peer but an admin could connect",
                         cfg.server.admin_reserved_connections, cfg.server.max_connections));
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
      r.fail_at(*r.get("ca_file"),
                fmt::format("upstream.ca_file: cannot read {}: {}", cfg.upstream.ca_file, std::strerror(errno)));
    if (auto v = r.integer("connect_timeout_ms", 10, 600000)) cfg.upstream.connect_timeout = Millis(*v);
    if (auto v = r.integer("request_timeout_ms", 10, 600000)) cfg.upstream.request_timeout = Millis(*v);
    if (auto v = r.integer("max_requests_per_minute", 1, 100000))
      cfg.upstream.max_requests_per_minute = static_cast<unsigned>(*v);
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
    if (auto v = r.integer("max_sessions_per_peer", 0, 10000000))
      cfg.customers.max_sessions_per_peer = static_cast<std::size_t>(*v);
    if (auto v = r.integer("max_memory_mib", 0, 1048576)) cfg.customers.max_memory_mib = static_cast<std::size_t>(*v);
    if (auto v = r.integer("login_burst", 1, 1000000)) cfg.customers.login_burst = static_cast<unsigned>(*v);
    if (auto v = r.integer("login_interval_ms", 1, 3600000)) cfg.customers.login_interval = Millis(*v);
    if (auto v = r.integer("idle_timeout_s", 60, 31536000)) cfg.customers.idle_timeout = Seconds(*v);
    if (auto v = r.boolean("store")) cfg.customers.store = *v;
    if (auto v = r.integer("refresh_token_lifetime_s", 60, 31536000)) cfg.customers.refresh_token_lifetime = Seconds(*v);
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
    if (auto v = r.string("sessions_path")) {
      if (v->empty() || v->front() != '/' || v->back() == '/' || *v == cfg.store.path)
        r.fail_at(*r.get("sessions_path"), "store.sessions_path must be the absolute path of a file other than store.path");
      cfg.store.sessions_path = *v;
    } else {
      cfg.store.sessions_path = cfg.store.path.substr(0, cfg.store.path.rfind('/') + 1) + "sessions";
      if (cfg.store.sessions_path == cfg.store.path) cfg.store.sessions_path += ".journal";
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
      if (cfg.store.key_credential.find('/') != std::string::npos)
        r.fail(line, "store.key_credential: a credential name cannot contain '/'");
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
    if (auto v = r.integer("session_poll_ms", 50, 60000)) cfg.store.session_poll = Millis(*v);
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
                                     "chmod 600 {} (or use store.password_file)",
                                     path));
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
    if (!creds->is_table())
      throw ConfigError(path, std::max(1u, line_of(*creds)), "[credentials] must be a table of [credentials.NAME]");
    for (auto&& [key, node] : *creds->as_table()) {
      std::string name(key.str());
      if (!node.is_table())
        throw ConfigError(path, std::max(1u, line_of(node)),
                          "credentials." + name + " must be a table [credentials." + name + "]");
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

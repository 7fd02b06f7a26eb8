#include "core/config_reader.hpp"

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

namespace cltoken::config_detail {

const toml::table& sub_table(const std::string& file, const toml::table& root, std::string_view name, const toml::table& empty) {
  const toml::node* n = root.get(name);
  if (n == nullptr) return empty;
  if (!n->is_table()) throw ConfigError(file, std::max(1u, line_of(*n)), "[" + std::string(name) + "] must be a table");
  return *n->as_table();
}

std::vector<Principal> principals(TableReader& r, std::string_view key, const ConfigEnvironment& env,
                                  std::optional<std::vector<Principal>> fallback, std::vector<std::string>* units) {
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

/// Reads a secret file, refusing one that other users could read or replace.
Secret read_secret_file(TableReader& r, unsigned line, const std::string& key, const std::string& path, SecretFileRule rule) {
  // O_NONBLOCK: a FIFO (or a device) named by mistake or malice must not hang the load;
  // and a reload runs on the event loop, where a hang would stop every client.
  // O_NOFOLLOW: a symbolic link in its place is refused, never followed.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0 && errno == ELOOP) r.fail(line, fmt::format("{}: {} is a symbolic link; name the file itself", key, path));
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
    const char* how = readable && writable ? "readable and writable"
                      : readable           ? "readable"
                      : writable           ? "writable"
                                           : "executable";
    r.fail(line, fmt::format("{}: {} is {} by {} (mode {:04o}); run: chmod {} {}", key, path, how,
                             private_file ? "group or others" : "others", st.st_mode & 07777, private_file ? "600" : "o=", path));
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

} // namespace cltoken::config_detail

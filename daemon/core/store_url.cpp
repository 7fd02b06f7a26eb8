#include "core/store_url.hpp"

#include <charconv>

namespace cltoken {

namespace {

/// Percent-decoding for the user-info part; nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    unsigned value = 0;
    if (i + 2 >= s.size()) return std::nullopt;
    auto [end, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, value, 16);
    if (ec != std::errc() || end != s.data() + i + 3) return std::nullopt;
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

bool parse_db(std::string_view text, unsigned& db) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), db);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size() && db <= 65535;
}

} // namespace

std::optional<RedisUrl> parse_redis_url(std::string_view text, std::string& error) {
  RedisUrl url;
  std::string_view rest;
  std::string scheme;
  if (text.starts_with("redis://")) {
    url.transport = RedisUrl::Transport::tcp;
    scheme = "redis://";
  } else if (text.starts_with("rediss://")) {
    url.transport = RedisUrl::Transport::tls;
    scheme = "rediss://";
  } else if (text.starts_with("unix://")) {
    url.transport = RedisUrl::Transport::unix_socket;
    scheme = "unix://";
  } else {
    error = "must start with redis://, rediss:// or unix://";
    return std::nullopt;
  }
  rest = text.substr(scheme.size());

  // User info ends at the last '@' before the path (a socket path may itself hold an '@',
  // so for unix:// it must be followed by the path's leading '/').
  std::size_t at = std::string_view::npos;
  if (url.transport == RedisUrl::Transport::unix_socket) {
    if (!rest.starts_with('/')) at = rest.find("@/");
  } else {
    at = rest.substr(0, rest.find('/')).rfind('@');
  }
  std::string userinfo_redacted;
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const std::size_t colon = userinfo.find(':');
    auto user = percent_decode(userinfo.substr(0, colon));
    if (!user) {
      error = "has a malformed %-escape in its user name";
      return std::nullopt;
    }
    url.user = *user;
    userinfo_redacted = userinfo.substr(0, colon);
    if (colon != std::string_view::npos) {
      auto password = percent_decode(userinfo.substr(colon + 1));
      if (!password) {
        error = "has a malformed %-escape in its password";
        return std::nullopt;
      }
      if (!password->empty()) url.password = Secret(std::move(*password));
      userinfo_redacted += ":***";
    }
    userinfo_redacted += "@";
  }

  if (url.transport == RedisUrl::Transport::unix_socket) {
    std::string_view query;
    if (auto q = rest.find('?'); q != std::string_view::npos) {
      query = rest.substr(q + 1);
      rest = rest.substr(0, q);
    }
    if (rest.empty() || rest.front() != '/') {
      error = "needs an absolute socket path: unix:///run/redis/redis.sock";
      return std::nullopt;
    }
    if (rest.size() >= 108) {
      error = "has a socket path longer than a Unix socket path may be (107 bytes)";
      return std::nullopt;
    }
    url.path = std::string(rest);
    if (!query.empty()) {
      if (!query.starts_with("db=") || !parse_db(query.substr(3), url.db)) {
        error = "accepts only ?db=N (0..65535) after the socket path";
        return std::nullopt;
      }
    }
    url.redacted = scheme + userinfo_redacted + url.path + (query.empty() ? "" : "?" + std::string(query));
    return url;
  }

  std::string_view authority = rest;
  std::string_view path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  }
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "has an unclosed [IPv6] host";
      return std::nullopt;
    }
    url.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') {
        error = "has something after the ] of its IPv6 host that is not :PORT";
        return std::nullopt;
      }
      url.port = std::string(authority.substr(close + 2));
    }
  } else {
    const auto colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) url.port = std::string(authority.substr(colon + 1));
  }
  if (url.host.empty()) {
    error = "has no host";
    return std::nullopt;
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(url.port.data(), url.port.data() + url.port.size(), port);
  if (url.port.empty() || ec != std::errc() || end != url.port.data() + url.port.size() || port < 1 || port > 65535) {
    error = "has an invalid port";
    return std::nullopt;
  }
  if (!path.empty() && !parse_db(path, url.db)) {
    error = "has a database that is not a number 0..65535 after the host";
    return std::nullopt;
  }
  url.redacted = scheme + userinfo_redacted + std::string(authority) + "/" + std::to_string(url.db);
  return url;
}

} // namespace cltoken

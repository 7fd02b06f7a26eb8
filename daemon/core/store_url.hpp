#pragma once
// store.url for the redis backend, parsed: where Redis is and how to log in.
//   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]    plain TCP (port 6379 by default)
//   rediss://[[USER]:PASSWORD@]HOST[:PORT][/DB]   TLS, certificate and host name verified
//   unix://[[USER]:PASSWORD@]/PATH[?db=DB]        a Unix socket
// USER and PASSWORD may be percent-encoded (a '@' or ':' in a password is %40, %3A).
#include <optional>
#include <string>
#include <string_view>

#include "core/secret.hpp"

namespace cltoken {

struct RedisUrl {
  enum class Transport { tcp, tls, unix_socket };
  Transport transport = Transport::tcp;
  std::string host; ///< tcp, tls (an IPv6 address without brackets)
  std::string port = "6379";
  std::string path; ///< unix_socket
  unsigned db = 0;
  std::string user; ///< empty: AUTH with the password alone (the "default" user)
  std::optional<Secret> password;
  std::string redacted; ///< the URL with any password replaced by "***", for logs and --check
};

/// nullopt with `error` set (a sentence without the password) when `text` is not usable.
[[nodiscard]] std::optional<RedisUrl> parse_redis_url(std::string_view text, std::string& error);

} // namespace cltoken

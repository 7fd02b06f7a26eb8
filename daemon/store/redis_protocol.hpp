#pragma once
// RESP, the Redis protocol, through hiredis: redisFormatCommandArgv() writes commands and
// redisReader parses replies, so no RESP is written by hand here. Debian 12's hiredis
// (0.14) has no TLS, so the bytes travel over our own Asio transport (redis_connection.hpp).
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cltoken {

/// One reply, copied out of hiredis' reply object.
struct RedisReply {
  enum class Type { nil, integer, string, status, error, array };
  Type type = Type::nil;
  long long integer = 0;
  std::string str; ///< string, status and error replies
  std::vector<RedisReply> elements;

  [[nodiscard]] bool is_error() const { return type == Type::error; }
  /// A status or bulk string equal to `text`.
  [[nodiscard]] bool is(std::string_view text) const { return (type == Type::status || type == Type::string) && str == text; }
};

/// A command (name and arguments, binary-safe) in RESP, ready to send.
[[nodiscard]] std::string format_redis_command(const std::vector<std::string>& args);

/// Incremental reply parser: feed() what the socket gave, then take complete replies.
class RedisReplyReader {
public:
  RedisReplyReader();
  ~RedisReplyReader();
  RedisReplyReader(const RedisReplyReader&) = delete;
  RedisReplyReader& operator=(const RedisReplyReader&) = delete;

  void feed(std::string_view bytes);
  /// A complete reply, nullopt when more bytes are needed. Throws std::runtime_error on a
  /// protocol error (the connection cannot be used after that).
  std::optional<RedisReply> next();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace cltoken

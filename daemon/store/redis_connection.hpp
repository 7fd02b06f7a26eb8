#pragma once
// One connection to Redis over Asio: TCP, TLS (asio::ssl with certificate and host name
// verification) or a Unix socket, with every step bounded by a deadline. Commands go one
// at a time; RESP is hiredis' (redis_protocol.hpp). After any failure the connection is
// finished: the caller drops it and opens a new one.
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "core/clock.hpp"
#include "core/store_url.hpp"
#include "store/redis_protocol.hpp"

namespace cltoken {

/// A transport or protocol failure: a sentence for the log, never a password or token.
class RedisError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class RedisConnection {
public:
  /// Connects, shakes hands (rediss://), authenticates (AUTH) and selects the database,
  /// all before `deadline`. `tls` is needed for rediss:// only. Throws RedisError.
  static boost::asio::awaitable<std::unique_ptr<RedisConnection>> open(boost::asio::any_io_executor executor, const RedisUrl& url,
                                                                       boost::asio::ssl::context* tls, SteadyTime deadline);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  /// Sends one command and reads its reply (an error reply is a reply, not a failure).
  /// Throws RedisError on a transport failure, a protocol error or the deadline.
  boost::asio::awaitable<RedisReply> command(const std::vector<std::string>& args, SteadyTime deadline);

private:
  RedisConnection() = default;
  template <class F>
  auto with_stream(F&& f);

  using Tcp = boost::beast::tcp_stream;
  using Tls = boost::beast::ssl_stream<boost::beast::tcp_stream>;
  using Unix = boost::beast::basic_stream<boost::asio::local::stream_protocol>;
  std::optional<Tcp> tcp_;
  std::optional<Tls> tls_;
  std::optional<Unix> unix_;
  RedisReplyReader reader_;
};

} // namespace cltoken

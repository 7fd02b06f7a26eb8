#include "store/redis_connection.hpp"

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <array>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <fmt/format.h>

#include "async/clock_timer.hpp"
#include "async/spawn.hpp"
#include "async/tls_client.hpp"

namespace cltoken {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;

namespace {

/// A reply larger than this is not one of ours (tokens are a few KiB): a hostile or
/// confused server must not make the daemon buffer without bound.
constexpr std::size_t max_reply_bytes = 1024 * 1024;

[[noreturn]] void fail(const char* step, const boost::system::error_code& ec) {
  if (ec == beast::error::timeout || ec == asio::error::operation_aborted)
    throw RedisError(fmt::format("no answer in time ({})", step));
  throw RedisError(fmt::format("{} failed: {}", step, ec.message()));
}

/// Resolves with a deadline: the resolver has none of its own, so a timer cancels it. The
/// timer holds only a weak reference, so a late expiry never touches a finished resolve.
asio::awaitable<tcp::resolver::results_type> resolve(asio::any_io_executor ex, const RedisUrl& url, SteadyTime deadline) {
  auto resolver = std::make_shared<tcp::resolver>(ex);
  ClockTimer guard(ex, deadline);
  guard.async_wait([weak = std::weak_ptr<tcp::resolver>(resolver)](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto r = weak.lock()) r->cancel();
  });
  auto [ec, results] = co_await resolver->async_resolve(url.host, url.port, use_tuple);
  guard.cancel();
  if (ec) fail("resolving the host name", ec);
  co_return results;
}

} // namespace

template <class F>
auto RedisConnection::with_stream(F&& f) {
  if (tls_) return f(*tls_);
  if (tcp_) return f(*tcp_);
  return f(*unix_);
}

RedisConnection::~RedisConnection() = default;

asio::awaitable<std::unique_ptr<RedisConnection>> RedisConnection::open(asio::any_io_executor ex, const RedisUrl& url,
                                                                        asio::ssl::context* tls, SteadyTime deadline) {
  std::unique_ptr<RedisConnection> c(new RedisConnection());
  switch (url.transport) {
  case RedisUrl::Transport::unix_socket: {
    c->unix_.emplace(ex);
    c->unix_->expires_at(deadline);
    auto [ec] = co_await c->unix_->async_connect(asio::local::stream_protocol::endpoint(url.path), use_tuple);
    if (ec) fail("connecting", ec);
    break;
  }
  case RedisUrl::Transport::tcp: {
    auto results = co_await resolve(ex, url, deadline);
    c->tcp_.emplace(ex);
    c->tcp_->expires_at(deadline);
    auto [ec, endpoint] = co_await c->tcp_->async_connect(results, use_tuple);
    if (ec) fail("connecting", ec);
    c->tcp_->socket().set_option(tcp::no_delay(true));
    break;
  }
  case RedisUrl::Transport::tls: {
    if (tls == nullptr) throw RedisError("rediss:// needs a TLS context");
    auto results = co_await resolve(ex, url, deadline);
    c->tls_.emplace(ex, *tls);
    auto& lowest = beast::get_lowest_layer(*c->tls_);
    lowest.expires_at(deadline);
    auto [ec, endpoint] = co_await lowest.async_connect(results, use_tuple);
    if (ec) fail("connecting", ec);
    lowest.socket().set_option(tcp::no_delay(true));
    // The certificate must name the host (or address) we asked for, whatever the CA.
    if (!expect_host(c->tls_->native_handle(), url.host)) throw RedisError("TLS setup failed: cannot set the expected host name");
    auto [hec] = co_await c->tls_->async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (hec) {
      if (hec.category() == asio::error::get_ssl_category())
        throw RedisError(fmt::format("TLS handshake failed: {}", hec.message()));
      fail("TLS handshake", hec);
    }
    break;
  }
  }
  if (url.password) {
    std::vector<std::string> auth{"AUTH"};
    if (!url.user.empty()) auth.push_back(url.user);
    auth.emplace_back(url.password->reveal());
    RedisReply r = co_await c->command(auth, deadline);
    wipe(auth.back());
    // Redis' own message ("WRONGPASS invalid username-password pair...") holds no secret.
    if (r.is_error()) throw RedisError("authentication refused: " + r.str);
  }
  if (url.db != 0) {
    // Arguments built before co_await: GCC 12 cannot keep a braced list across a suspension.
    const std::vector<std::string> select{"SELECT", std::to_string(url.db)};
    RedisReply r = co_await c->command(select, deadline);
    if (r.is_error()) throw RedisError(fmt::format("SELECT {} refused: {}", url.db, r.str));
  }
  co_return c;
}

asio::awaitable<RedisReply> RedisConnection::command(const std::vector<std::string>& args, SteadyTime deadline) {
  std::string wire = format_redis_command(args);
  auto [wec, written] = co_await with_stream([&](auto& s) {
    beast::get_lowest_layer(s).expires_at(deadline);
    return asio::async_write(s, asio::buffer(wire), use_tuple);
  });
  OPENSSL_cleanse(wire.data(), wire.size()); // AUTH carries the password
  if (wec) fail("sending a command", wec);
  std::size_t received = 0;
  std::array<char, 4096> buf; // std::array: GCC 12 rejects a raw array in a coroutine frame
  for (;;) {
    std::optional<RedisReply> reply;
    try {
      reply = reader_.next();
    } catch (const std::exception& e) {
      throw RedisError(e.what());
    }
    if (reply) co_return std::move(*reply);
    auto [rec, n] = co_await with_stream([&](auto& s) {
      beast::get_lowest_layer(s).expires_at(deadline);
      return s.async_read_some(asio::buffer(buf), use_tuple);
    });
    if (rec == asio::error::eof || rec == asio::ssl::error::stream_truncated) throw RedisError("Redis closed the connection");
    if (rec) fail("reading the reply", rec);
    received += n;
    if (received > max_reply_bytes) throw RedisError("reply larger than 1 MiB; not a cl-tokend record");
    try {
      reader_.feed(std::string_view(buf.data(), n));
    } catch (const std::exception& e) {
      throw RedisError(e.what());
    }
  }
}

} // namespace cltoken

#include "server/connection.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <memory>
#include <tuple>

#include "async/clock_timer.hpp"
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "async/spawn.hpp"
#include "core/secret.hpp"

namespace cltoken {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Stream = asio::local::stream_protocol::socket;

namespace {

/// The deadline of one request's reads and writes. When it passes, the socket's pending
/// operations are cancelled but the socket stays open (beast::basic_stream's timeout
/// closes it), so a slow sender still gets its 408. Lives in the frame of one request.
class Deadline {
public:
  Deadline(Stream& stream, Millis after) : stream_(stream), timer_(stream.get_executor(), after) {
    // The timer's handler may run after this frame is gone (it had already fired): it
    // touches the socket only while this object lives.
    timer_.async_wait([&stream = stream_, alive = std::weak_ptr<bool>(expired_)](const boost::system::error_code& ec) {
      auto expired = alive.lock();
      if (ec || !expired) return;
      *expired = true;
      boost::system::error_code ignored;
      stream.cancel(ignored);
    });
  }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  [[nodiscard]] bool expired() const { return *expired_; }

private:
  Stream& stream_;
  ClockTimer timer_;
  std::shared_ptr<bool> expired_ = std::make_shared<bool>(false);
};

http::response<http::string_body> to_http(Response&& r, bool keep_alive, bool head) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
  res.set(http::field::server, "cl-tokend");
  res.set(http::field::content_type, r.content_type);
  res.set(http::field::cache_control, "no-store"); // tokens must not be cached by anything in between
  if (r.retry_after) res.set(http::field::retry_after, std::to_string(*r.retry_after));
  if (r.status == 405) res.set(http::field::allow, r.allow.empty() ? (r.body.find("POST") != std::string::npos ? "POST" : "GET") : r.allow);
  res.keep_alive(keep_alive);
  res.body() = std::move(r.body);
  res.prepare_payload();
  if (head) wipe(res.body());
  return res;
}

/// The answer to a request that could not be read, or nullopt to close without one (the
/// peer went away, or sent nothing worth answering).
std::optional<Response> read_failure(const beast::error_code& ec, const ServerConfig& config) {
  // The contract ties each code to one status: too_large is always 413, headers included.
  if (ec == http::error::header_limit)
    return error_response(413, "too_large", "request line and headers exceed " + std::to_string(config.max_header_bytes) + " bytes");
  if (ec == http::error::body_limit || ec == http::error::buffer_overflow)
    return error_response(413, "too_large", "request body exceeds " + std::to_string(config.max_body_bytes) + " bytes");
  if (ec == beast::error::timeout) return error_response(408, "timeout", "request not received within the deadline");
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return std::nullopt;
  if (ec.category() == http::make_error_code(http::error::bad_target).category())
    return error_response(400, "bad_request", "malformed HTTP request: " + ec.message());
  return std::nullopt; // reset, cancelled at shutdown: nobody to answer
}

/// Overwrites the buffer's unused capacity, where the bytes of requests already handled
/// linger. prepare() first moves any unread bytes (a pipelined request) to the front.
void wipe_spare(beast::flat_buffer& buffer) {
  auto spare = buffer.prepare(std::min(buffer.capacity(), buffer.max_size()) - buffer.size());
  OPENSSL_cleanse(spare.data(), spare.size());
}

/// Sends a last answer and closes; the write has the request deadline like any other.
asio::awaitable<void> send_final(Stream& stream, Response response, const ServerConfig& config) {
  auto res = to_http(std::move(response), false, false);
  Deadline deadline(stream, config.request_timeout);
  co_await http::async_write(stream, res, use_tuple);
}

/// One request, from its first bytes (already in `buffer`) to its answer written. Its own
/// coroutine so that the parser, the request and the answer live in a frame that exists
/// only while a request does: the frame of run_connection is what each idle keep-alive
/// connection keeps (1,000 idle connections: docs/performance.md). Returns whether the
/// connection may serve another request.
asio::awaitable<bool> serve_request(Stream& stream, beast::flat_buffer& buffer, const PeerIdentity& peer,
                                    const ServerConfig& config, Handler& handler, const Clock& clock,
                                    ConnectionControl& control) {
  // A request has started: it holds one of its uid's slots until the answer is written.
  auto slot = control.slots.acquire(peer.uid);
  if (!slot) {
    auto v = control.refusals.admit(peer.uid, clock.now());
    if (v.suppressed > 0) spdlog::warn("{} further refused requests of uid {} were not logged", v.suppressed, peer.uid);
    if (v.log)
      spdlog::warn("request refused: uid={} pid={} already has {} requests in progress (server.max_requests_per_peer)",
                   peer.uid, peer.pid, control.slots.limit());
    Response r = error_response(429, "rate_limited",
                                "too many requests in progress for this user; wait for an answer before sending more");
    r.retry_after = 1;
    handler.count_refused(r.status);
    co_await send_final(stream, std::move(r), config);
    co_return false;
  }
  const SteadyTime deadline = clock.now() + config.request_timeout;
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(config.max_header_bytes));
  parser.body_limit(config.max_body_bytes);
  beast::error_code rec;
  {
    Deadline read_deadline(stream, config.request_timeout);
    std::tie(rec, std::ignore) = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (rec && read_deadline.expired()) rec = beast::error::timeout;
  }
  if (rec) {
    if (auto answer = read_failure(rec, config)) {
      handler.count_refused(answer->status);
      co_await send_final(stream, std::move(*answer), config);
    }
    co_return false;
  }
  auto& req = parser.get();
  const bool keep_alive = req.keep_alive() && !control.stopping;
  const bool head = req.method() == http::verb::head;
  Request request{std::string(req.method_string()), std::string(req.target()), std::move(req.body())};
  Response response = co_await handler.handle(std::move(request), peer, deadline);
  auto res = to_http(std::move(response), keep_alive, head);
  Deadline write_deadline(stream, config.request_timeout);
  auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
  wipe(res.body()); // may hold a token
  wipe_spare(buffer); // the request read may have carried one (invalidate)
  if (buffer.size() == 0) buffer.shrink_to_fit(); // idle from here: hold no buffer
  co_return !wec && keep_alive;
}

/// Reads what has already arrived of the next request into `buffer`, without waiting;
/// would_block when nothing has. The buffer is given room only for the read and holds
/// nothing again when nothing came, so a connection that waits holds no buffer.
void read_arrived(Stream& stream, beast::flat_buffer& buffer, beast::error_code& ec) {
  constexpr std::size_t first_read = 512; // a whole GET in one read; the parser asks for more if needed
  const std::size_t n = stream.receive(buffer.prepare(std::min(first_read, buffer.max_size())), 0, ec);
  buffer.commit(n);
  if (buffer.size() == 0) buffer.shrink_to_fit();
}

} // namespace

asio::awaitable<void> run_connection(asio::local::stream_protocol::socket socket, PeerIdentity peer, const ServerConfig& config,
                                     Handler& handler, const Clock& clock, ConnectionControl& control) {
  // Non-blocking, so read_arrived() returns at once when the next request is not there yet.
  boost::system::error_code nb;
  socket.non_blocking(true, nb);
  Stream stream(std::move(socket));
  // The buffer's maximum bounds what one connection can make the daemon hold, whatever
  // the peer sends: a header or body over its limit fails the parse, never grows memory.
  // It allocates nothing up front and grows as a request needs; between requests it holds
  // nothing.
  beast::flat_buffer buffer(config.max_header_bytes + config.max_body_bytes);
  for (bool first = true;; first = false) {
    if (control.stopping && !first) break;
    if (buffer.size() == 0) {
      // A busy keep-alive client has usually sent its next request already: read it now.
      // Otherwise wait, holding no buffer and no timer, only an entry in control.idle
      // (whose one timer closes the connection after idle_timeout_ms; a stop closes it at
      // once, unless it is new: its client just connected and its first request may be on
      // its way, and the shutdown grace bounds that wait).
      beast::error_code ec;
      read_arrived(stream, buffer, ec);
      while (ec == asio::error::would_block) { // again after a wakeup with nothing to read
        const auto id = control.idle.add(clock.now(), first, [&stream] {
          boost::system::error_code ignored;
          stream.cancel(ignored);
        });
        std::tie(ec) = co_await stream.async_wait(asio::socket_base::wait_read, use_tuple);
        control.idle.remove(id);
        if (!ec) read_arrived(stream, buffer, ec);
      }
      if (ec) break; // idle timeout, a stop, or the peer closed: nobody to answer
    }
    if (!co_await serve_request(stream, buffer, peer, config, handler, clock, control)) break;
  }
  // A request that ended the connection (refused, too large, timed out) may still be in
  // the buffer, and a login carries a password: wipe it before it is freed.
  buffer.consume(buffer.size());
  wipe_spare(buffer);
  beast::error_code ignored;
  stream.shutdown(asio::local::stream_protocol::socket::shutdown_both, ignored);
}

} // namespace cltoken

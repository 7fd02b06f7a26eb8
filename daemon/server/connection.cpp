#include "server/connection.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "core/secret.hpp"

namespace cltoken {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Stream = beast::basic_stream<asio::local::stream_protocol, asio::any_io_executor, beast::unlimited_rate_policy>;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

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
  stream.expires_after(config.request_timeout);
  co_await http::async_write(stream, res, use_tuple);
}

} // namespace

asio::awaitable<void> run_connection(asio::local::stream_protocol::socket socket, PeerIdentity peer, const ServerConfig& config,
                                     Handler& handler, const Clock& clock, ConnectionControl& control) {
  Stream stream(std::move(socket));
  // The buffer's maximum bounds what one connection can make the daemon hold, whatever
  // the peer sends: a header or body over its limit fails the parse, never grows memory.
  // It allocates nothing up front and grows as a request needs; between requests it holds
  // nothing, so an idle keep-alive connection costs its coroutine and socket only
  // (1,000 idle connections: docs/performance.md).
  beast::flat_buffer buffer(config.max_header_bytes + config.max_body_bytes);
  // The first bytes of a request land here while the buffer is empty: a small read into
  // the coroutine's own frame, not a buffer allocated for a peer that may say nothing.
  std::array<char, 512> first_bytes;
  for (bool first = true;; first = false) {
    if (control.stopping && !first) break;
    // Waiting for a request to start: the idle timeout. A byte arriving starts the request clock.
    if (buffer.size() == 0) {
      stream.expires_after(config.idle_timeout);
      // A stop closes idle keep-alive connections, but not a new one whose first request
      // is still on its way: that client just connected and would lose its request (the
      // shutdown grace bounds the wait).
      const std::uint64_t id = control.next_id++;
      if (!first) control.idle.emplace(id, [&stream] { stream.cancel(); });
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(first_bytes), use_tuple);
      control.idle.erase(id);
      if (ec) break; // idle timeout, peer gone, or shutdown: close quietly
      buffer.commit(asio::buffer_copy(buffer.prepare(n), asio::buffer(first_bytes.data(), n)));
      OPENSSL_cleanse(first_bytes.data(), n); // may hold a token (invalidate)
    }
    // A request has started: it holds one of its uid's slots until the answer is written.
    auto slot = control.slots.acquire(peer.uid);
    if (!slot) {
      auto v = control.refusals.admit(clock.now());
      if (v.suppressed > 0) spdlog::warn("{} further refused requests were not logged", v.suppressed);
      if (v.log)
        spdlog::warn("request refused: uid={} pid={} already has {} requests in progress (server.max_requests_per_peer)",
                     peer.uid, peer.pid, control.slots.limit());
      Response r = error_response(429, "rate_limited",
                                  "too many requests in progress for this user; wait for an answer before sending more");
      r.retry_after = 1;
      co_await send_final(stream, std::move(r), config);
      break;
    }
    const SteadyTime deadline = clock.now() + config.request_timeout;
    stream.expires_after(config.request_timeout);
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(config.max_header_bytes));
    parser.body_limit(config.max_body_bytes);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (rec) {
      if (auto answer = read_failure(rec, config)) co_await send_final(stream, std::move(*answer), config);
      break;
    }
    auto& req = parser.get();
    const bool keep_alive = req.keep_alive() && !control.stopping;
    const bool head = req.method() == http::verb::head;
    Request request{std::string(req.method_string()), std::string(req.target()), std::move(req.body())};
    Response response = co_await handler.handle(std::move(request), peer, deadline);
    auto res = to_http(std::move(response), keep_alive, head);
    stream.expires_after(config.request_timeout);
    auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
    wipe(res.body()); // may hold a token
    wipe_spare(buffer); // the request read may have carried one (invalidate)
    if (buffer.size() == 0) buffer.shrink_to_fit(); // idle from here: hold no buffer
    if (wec || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(asio::local::stream_protocol::socket::shutdown_both, ignored);
}

} // namespace cltoken

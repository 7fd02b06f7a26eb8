#include "server/connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

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
  if (r.status == 405) res.set(http::field::allow, r.body.find("POST") != std::string::npos ? "POST" : "GET");
  res.keep_alive(keep_alive);
  res.body() = std::move(r.body);
  res.prepare_payload();
  if (head) res.body().clear();
  return res;
}

/// Sends a last answer (for a request we could not read) with a short deadline, then gives up.
asio::awaitable<void> send_final(Stream& stream, unsigned status, const char* code, const std::string& message) {
  auto res = to_http(error_response(status, code, message), false, false);
  stream.expires_after(std::chrono::seconds(1));
  co_await http::async_write(stream, res, use_tuple);
}

} // namespace

asio::awaitable<void> run_connection(asio::local::stream_protocol::socket socket, PeerIdentity peer, const ServerConfig& config,
                                     Handler& handler, const Clock& clock, ConnectionControl& control) {
  Stream stream(std::move(socket));
  beast::flat_buffer buffer(config.max_header_bytes + config.max_body_bytes);
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
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), use_tuple);
      control.idle.erase(id);
      if (ec) break; // idle timeout, peer gone, or shutdown: close quietly
      buffer.commit(n);
    }
    const SteadyTime deadline = clock.now() + config.request_timeout;
    stream.expires_after(config.request_timeout);
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(config.max_header_bytes));
    parser.body_limit(config.max_body_bytes);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (rec) {
      if (rec == http::error::header_limit)
        co_await send_final(stream, 431, "too_large", "request headers exceed " + std::to_string(config.max_header_bytes) + " bytes");
      else if (rec == http::error::body_limit)
        co_await send_final(stream, 413, "too_large", "request body exceeds " + std::to_string(config.max_body_bytes) + " bytes");
      else if (rec == beast::error::timeout)
        co_await send_final(stream, 408, "timeout", "request not received within the deadline");
      else if (rec.category() == http::make_error_code(http::error::bad_target).category() && rec != http::error::end_of_stream &&
               rec != http::error::partial_message)
        co_await send_final(stream, 400, "bad_request", "malformed HTTP request: " + rec.message());
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
    if (wec || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(asio::local::stream_protocol::socket::shutdown_both, ignored);
}

} // namespace cltoken

#include "upstream/auth_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <cerrno>

#include <optional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "async/clock_timer.hpp"
#include "async/spawn.hpp"
#include "async/tls_client.hpp"

namespace cltoken {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

/// One kept-alive connection to the auth server, plain (loopback only) or TLS.
struct AuthClient::Connection {
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

AuthClient::AuthClient(asio::any_io_executor executor, UpstreamConfig config, const Clock& clock)
    : executor_(std::move(executor)), config_(std::move(config)), clock_(clock), tls_(tls_client_context(config_.ca_file)) {}

AuthClient::~AuthClient() = default;

void AuthClient::close_idle() { idle_.clear(); }

namespace {

UpstreamFailure network_failure(std::string message) {
  UpstreamFailure f;
  f.kind = FailureKind::network_error;
  f.message = std::move(message);
  return f;
}

/// Why a step failed, in words an operator can act on. `ssl` is the connection's SSL
/// object when there is one: its verify result names the certificate problem (hostname
/// mismatch, unknown issuer, expired), which OpenSSL's error string alone does not.
std::string describe_error(const beast::error_code& ec, std::string_view step, const std::string& host, SSL* ssl) {
  if (ec == beast::error::timeout) return fmt::format("auth server {}: no answer in time ({})", host, step);
  if (ec.category() == asio::error::get_ssl_category()) {
    if (ssl != nullptr) {
      const long verify = SSL_get_verify_result(ssl);
      if (verify != X509_V_OK)
        return fmt::format("TLS with auth server {} refused during {}: certificate verify failed ({}); "
                           "check upstream.auth_url and upstream.ca_file",
                           host, step, X509_verify_cert_error_string(verify));
    }
    return fmt::format("TLS with auth server {} failed during {}: {}", host, step, ec.message());
  }
  if (ec == asio::error::connection_refused)
    return fmt::format("auth server {} refused the connection (nothing listening?)", host);
  if (ec == asio::error::connection_reset) return fmt::format("auth server {} reset the connection during {}", host, step);
  if (ec == asio::error::host_not_found || ec == asio::error::host_not_found_try_again)
    return fmt::format("auth server {}: host name not found", host);
  return fmt::format("auth server {}: {} failed: {}", host, step, ec.message());
}

/// A clean end of stream: what a server that closed an idle kept-alive connection looks
/// like. A reset is not in this class: it also is what a server that read the request and
/// then crashed sends, and retrying then would send a second request behind the budget.
bool clean_close(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}

/// An idle connection is reusable only if nothing arrived while it was idle: EOF, a TLS
/// close_notify or stray bytes all mean the server is done with it.
bool still_open(beast::tcp_stream& s, const beast::flat_buffer& leftover) {
  if (leftover.size() > 0) return false;
  char byte;
  const ssize_t n = ::recv(s.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

} // namespace

asio::awaitable<std::variant<std::unique_ptr<AuthClient::Connection>, UpstreamFailure>> AuthClient::connect(SteadyTime deadline) {
  auto conn = std::make_unique<Connection>();
  const auto& url = config_.auth_url;
  // Each step of setting up a connection gets connect_timeout_ms, and none runs past the
  // deadline of the whole request.
  auto step_deadline = [&] { return std::min<SteadyTime>(clock_.now() + config_.connect_timeout, deadline); };

  // The resolver has no deadline of its own: a timer cancels it.
  tcp::resolver resolver(executor_);
  ClockTimer guard(executor_, step_deadline());
  bool timed_out = false;
  guard.async_wait([&resolver, &timed_out](const beast::error_code& ec) {
    if (!ec) {
      timed_out = true;
      resolver.cancel();
    }
  });
  auto [rec, endpoints] = co_await resolver.async_resolve(url.host, url.port, use_tuple);
  guard.cancel();
  if (rec)
    co_return network_failure(
        describe_error(timed_out ? beast::error_code(beast::error::timeout) : rec, "name resolution", url.host, nullptr));

  SSL* ssl = nullptr;
  if (url.tls) {
    conn->tls.emplace(executor_, tls_);
    ssl = conn->tls->native_handle();
    if (!expect_host(ssl, url.host))
      co_return network_failure(fmt::format("TLS setup for auth server {} failed: cannot set the expected host name", url.host));
  } else {
    conn->plain.emplace(executor_);
  }
  auto& tcp_layer = conn->lowest();
  tcp_layer.expires_at(step_deadline());
  auto [cec, ep] = co_await tcp_layer.async_connect(endpoints, use_tuple);
  if (cec) co_return network_failure(describe_error(cec, "connect", url.host, nullptr));
  if (conn->tls) {
    tcp_layer.expires_at(step_deadline());
    auto [hec] = co_await conn->tls->async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (hec) co_return network_failure(describe_error(hec, "TLS handshake", url.host, ssl));
  }
  tcp_layer.expires_never();
  co_return conn;
}

asio::awaitable<std::variant<AuthClient::Reply, UpstreamFailure>> AuthClient::send(http::verb verb, std::string path,
                                                                                   std::string& body) {
  const auto& url = config_.auth_url;
  // request_timeout_ms bounds the whole request, connection set-up included, so a fetch
  // never takes longer than that whatever the server does.
  const SteadyTime deadline = clock_.now() + config_.request_timeout;
  http::request<http::string_body> req{verb, url.base_path + path, 11};
  // An IPv6 literal is kept without brackets in AuthUrl; the Host header needs them back.
  const std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  req.set(http::field::host, url.port == (url.tls ? "443" : "80") ? host : host + ":" + url.port);
  req.set(http::field::user_agent, "cl-tokend/" CLTOKEN_VERSION);
  if (verb == http::verb::post) req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "application/json");
  req.keep_alive(true);
  req.body() = body;
  req.prepare_payload();
  struct WipeBody {
    std::string& b;
    ~WipeBody() { wipe(b); }
  } wipe_body{req.body()};

  // A kept-alive connection may have been closed by the server while idle; if the first
  // exchange on a reused connection ends cleanly before any answer, retry once on a new one.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Connection> conn;
    bool reused = false;
    while (!idle_.empty() && !conn) {
      conn = std::move(idle_.back());
      idle_.pop_back();
      if (!still_open(conn->lowest(), conn->buffer)) conn.reset();
    }
    if (conn) {
      reused = true;
    } else {
      auto made = co_await connect(deadline);
      if (auto* f = std::get_if<UpstreamFailure>(&made)) co_return std::move(*f);
      conn = std::move(std::get<std::unique_ptr<Connection>>(made));
    }
    conn->lowest().expires_at(deadline);
    http::response_parser<http::string_body> parser;
    parser.body_limit(1024 * 1024);
    beast::error_code ec;
    const char* step = "write";
    if (conn->tls) {
      std::tie(ec, std::ignore) = co_await http::async_write(*conn->tls, req, use_tuple);
      if (!ec) {
        step = "read";
        std::tie(ec, std::ignore) = co_await http::async_read(*conn->tls, conn->buffer, parser, use_tuple);
      }
    } else {
      std::tie(ec, std::ignore) = co_await http::async_write(*conn->plain, req, use_tuple);
      if (!ec) {
        step = "read";
        std::tie(ec, std::ignore) = co_await http::async_read(*conn->plain, conn->buffer, parser, use_tuple);
      }
    }
    if (ec) {
      const bool nothing_received = !parser.got_some();
      if (reused && nothing_received && clean_close(ec)) continue;
      if (!nothing_received && ec != beast::error::timeout)
        co_return network_failure(fmt::format("auth server {} broke off its answer ({})", url.host, ec.message()));
      co_return network_failure(describe_error(ec, step, url.host, nullptr));
    }
    auto& res = parser.get();
    Reply reply;
    reply.status = res.result_int();
    reply.retry_after = std::string(res[http::field::retry_after]);
    reply.body = std::move(res.body());
    if (res.keep_alive() && idle_.size() < 4) {
      conn->lowest().expires_never();
      idle_.push_back(std::move(conn));
    }
    co_return reply;
  }
  co_return network_failure(fmt::format("auth server {} closed the connection before answering", url.host));
}

asio::awaitable<UpstreamResult> AuthClient::request_token(const TokenRequest& request) {
  std::string body = token_request_body(request);
  auto result = co_await send(http::verb::post, "/oauth/token", body);
  wipe(body);
  if (auto* failure = std::get_if<UpstreamFailure>(&result)) co_return std::move(*failure);
  auto& reply = std::get<Reply>(result);
  auto parsed = parse_token_response(reply.status, reply.body, reply.retry_after, clock_.wall_now());
  wipe(reply.body);
  co_return parsed;
}

asio::awaitable<std::optional<UpstreamFailure>>
AuthClient::revoke(const std::string& client_id, const std::optional<Secret>& client_secret, const Secret& token) {
  std::string body = revoke_request_body(client_id, client_secret, token);
  auto result = co_await send(http::verb::post, "/oauth/revoke", body);
  wipe(body);
  if (auto* failure = std::get_if<UpstreamFailure>(&result)) co_return std::move(*failure);
  auto& reply = std::get<Reply>(result);
  if (reply.status == 200) co_return std::nullopt;
  auto parsed = parse_token_response(reply.status, reply.body, reply.retry_after, clock_.wall_now());
  if (auto* failure = std::get_if<UpstreamFailure>(&parsed)) co_return std::move(*failure);
  co_return UpstreamFailure{FailureKind::server_error, fmt::format("revoke answered {}", reply.status), {}, reply.status, {}};
}

asio::awaitable<JwksAnswer> AuthClient::fetch_jwks() {
  std::string none;
  auto result = co_await send(http::verb::get, "/.well-known/jwks.json", none);
  if (auto* failure = std::get_if<UpstreamFailure>(&result)) co_return std::move(*failure);
  auto& reply = std::get<Reply>(result);
  if (reply.status != 200) {
    UpstreamFailure f;
    f.kind = reply.status == 429 ? FailureKind::rate_limited : FailureKind::server_error;
    f.http_status = reply.status;
    f.message = fmt::format("the auth server's key set answered HTTP {}", reply.status);
    co_return f;
  }
  co_return std::move(reply.body);
}

} // namespace cltoken

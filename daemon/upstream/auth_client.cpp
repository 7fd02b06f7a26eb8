#include "upstream/auth_client.hpp"

#include <openssl/ssl.h>

#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace cltoken {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// One kept-alive connection to the auth server, plain (loopback only) or TLS.
struct AuthClient::Connection {
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

AuthClient::AuthClient(asio::any_io_executor executor, UpstreamConfig config, const Clock& clock)
    : executor_(std::move(executor)), config_(std::move(config)), clock_(clock), tls_(asio::ssl::context::tls_client) {
  tls_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                   asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  tls_.set_verify_mode(asio::ssl::verify_peer);
  if (config_.ca_file.empty())
    tls_.set_default_verify_paths();
  else
    tls_.load_verify_file(config_.ca_file); // throws with OpenSSL's reason if unreadable
}

AuthClient::~AuthClient() = default;

void AuthClient::close_idle() { idle_.clear(); }

namespace {

std::string describe_error(const beast::error_code& ec, const char* step, const std::string& host) {
  if (ec == beast::error::timeout) return fmt::format("auth server {}: no answer in time ({})", host, step);
  if (ec.category() == asio::error::get_ssl_category()) {
    // Name the OpenSSL reason (e.g. "certificate verify failed"), which is what an
    // operator needs to fix a CA bundle or a proxy.
    return fmt::format("TLS with auth server {} failed during {}: {}", host, step, ec.message());
  }
  return fmt::format("auth server {} unreachable during {}: {}", host, step, ec.message());
}

UpstreamFailure network_failure(std::string message) {
  UpstreamFailure f;
  f.kind = FailureKind::network_error;
  f.message = std::move(message);
  return f;
}

} // namespace

asio::awaitable<std::unique_ptr<AuthClient::Connection>> AuthClient::connect() {
  auto conn = std::make_unique<Connection>();
  const auto& url = config_.auth_url;

  // The resolver has no deadline of its own: a timer cancels it.
  tcp::resolver resolver(executor_);
  asio::steady_timer guard(executor_, config_.connect_timeout);
  bool timed_out = false;
  guard.async_wait([&resolver, &timed_out](const beast::error_code& ec) {
    if (!ec) {
      timed_out = true;
      resolver.cancel();
    }
  });
  auto [rec, endpoints] = co_await resolver.async_resolve(url.host, url.port, use_tuple);
  guard.cancel();
  if (rec) throw beast::system_error(timed_out ? beast::error_code(beast::error::timeout) : rec, "resolve");

  if (url.tls) {
    conn->tls.emplace(executor_, tls_);
    // SNI, and the name the certificate must carry (DNS name or IP address).
    if (!SSL_set_tlsext_host_name(conn->tls->native_handle(), url.host.c_str()))
      throw beast::system_error(beast::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()), "SNI");
    conn->tls->set_verify_callback(asio::ssl::host_name_verification(url.host));
  } else {
    conn->plain.emplace(executor_);
  }
  auto& tcp_layer = conn->lowest();
  tcp_layer.expires_after(config_.connect_timeout);
  auto [cec, ep] = co_await tcp_layer.async_connect(endpoints, use_tuple);
  if (cec) throw beast::system_error(cec, "connect");
  if (conn->tls) {
    auto [hec] = co_await conn->tls->async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (hec) throw beast::system_error(hec, "TLS handshake");
  }
  tcp_layer.expires_never();
  co_return conn;
}

asio::awaitable<std::variant<AuthClient::Reply, UpstreamFailure>> AuthClient::post(std::string path, std::string& body) {
  const auto& url = config_.auth_url;
  http::request<http::string_body> req{http::verb::post, url.base_path + path, 11};
  req.set(http::field::host, url.port == (url.tls ? "443" : "80") ? url.host : url.host + ":" + url.port);
  req.set(http::field::user_agent, "cl-tokend/" CLTOKEN_VERSION);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "application/json");
  req.keep_alive(true);
  req.body() = body;
  req.prepare_payload();

  // A kept-alive connection may have been closed by the server while idle; if the first
  // exchange on a reused connection fails before any answer, retry once on a new one.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Connection> conn;
    bool reused = false;
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
      reused = true;
    } else {
      try {
        conn = co_await connect();
      } catch (const beast::system_error& e) {
        wipe(req.body());
        co_return network_failure(describe_error(e.code(), "connect", url.host));
      }
    }
    conn->lowest().expires_after(config_.request_timeout);
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
      if (reused && nothing_received && ec != beast::error::timeout) continue;
      wipe(req.body());
      if (ec == http::error::partial_message || ec == http::error::body_limit || ec.category() == http::make_error_code(http::error::bad_target).category())
        co_return network_failure(fmt::format("auth server {} sent a broken HTTP answer: {}", url.host, ec.message()));
      co_return network_failure(describe_error(ec, step, url.host));
    }
    wipe(req.body());
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
  wipe(req.body());
  co_return network_failure(fmt::format("auth server {} closed the connection before answering", url.host));
}

asio::awaitable<UpstreamResult> AuthClient::request_token(const TokenRequest& request) {
  std::string body = token_request_body(request);
  auto result = co_await post("/oauth/token", body);
  wipe(body);
  if (auto* failure = std::get_if<UpstreamFailure>(&result)) co_return std::move(*failure);
  auto& reply = std::get<Reply>(result);
  auto parsed = parse_token_response(reply.status, reply.body, reply.retry_after, clock_.wall_now());
  wipe(reply.body);
  co_return parsed;
}

asio::awaitable<std::optional<UpstreamFailure>> AuthClient::revoke(const std::string& client_id,
                                                                   const std::optional<Secret>& client_secret,
                                                                   const Secret& token) {
  std::string body = revoke_request_body(client_id, client_secret, token);
  auto result = co_await post("/oauth/revoke", body);
  wipe(body);
  if (auto* failure = std::get_if<UpstreamFailure>(&result)) co_return std::move(*failure);
  auto& reply = std::get<Reply>(result);
  if (reply.status == 200) co_return std::nullopt;
  auto parsed = parse_token_response(reply.status, reply.body, reply.retry_after, clock_.wall_now());
  if (auto* failure = std::get_if<UpstreamFailure>(&parsed)) co_return std::move(*failure);
  co_return UpstreamFailure{FailureKind::server_error, fmt::format("revoke answered {}", reply.status), {}, reply.status, {}};
}

} // namespace cltoken

#pragma once
// HTTPS client for Commerce Layer's auth endpoint: Beast over OpenSSL with certificate and
// host-name verification, idle connections reused, and a deadline on every step:
// upstream.request_timeout_ms bounds a whole request (connection set-up included), and
// within it name resolution, TCP connect and the TLS handshake each get
// upstream.connect_timeout_ms.
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/verb.hpp>

#include "core/config.hpp"
#include "upstream/jwks_source.hpp"
#include "upstream/upstream.hpp"

namespace cltoken {

class AuthClient final : public Upstream, public JwksSource {
public:
  /// Throws std::runtime_error when the TLS context cannot be set up (unreadable ca_file).
  AuthClient(boost::asio::any_io_executor executor, UpstreamConfig config, const Clock& clock);
  ~AuthClient() override;
  AuthClient(const AuthClient&) = delete;
  AuthClient& operator=(const AuthClient&) = delete;

  boost::asio::awaitable<UpstreamResult> request_token(const TokenRequest& request) override;
  boost::asio::awaitable<std::optional<UpstreamFailure>>
  revoke(const std::string& client_id, const std::optional<Secret>& client_secret, const Secret& token) override;

  /// GET {auth_url}/.well-known/jwks.json, on the same verified connections.
  boost::asio::awaitable<JwksAnswer> fetch_jwks() override;

  /// Drops idle connections (on reload or shutdown).
  void close_idle();

  struct Connection;
  struct Reply {
    unsigned status = 0;
    std::string retry_after;
    std::string body;
  };

private:
  /// Sends a request (a JSON body for POST); a network failure comes back as an UpstreamFailure.
  boost::asio::awaitable<std::variant<Reply, UpstreamFailure>> send(boost::beast::http::verb verb, std::string path,
                                                                    std::string& body);
  /// A new connection, ready for a request, or why there is none.
  boost::asio::awaitable<std::variant<std::unique_ptr<Connection>, UpstreamFailure>> connect(SteadyTime deadline);

  boost::asio::any_io_executor executor_;
  UpstreamConfig config_;
  const Clock& clock_;
  boost::asio::ssl::context tls_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

} // namespace cltoken

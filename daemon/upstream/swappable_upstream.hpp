#pragma once
// The auth server as everyone else holds it (Upstream&, JwksSource&), with the client
// behind it replaceable: a reload that changes the auth URL, CA file or timeouts swaps in
// a new client. Each request holds its client for as long as it runs, so a replaced one
// lives exactly until its last request ends, and no longer.
#include <memory>
#include <optional>
#include <string>

#include "upstream/jwks_source.hpp"
#include "upstream/upstream.hpp"

namespace cltoken {

/// `Client` is an Upstream and a JwksSource (AuthClient; a script in the tests).
template <class Client>
class SwappableUpstream final : public Upstream, public JwksSource {
public:
  /// The client new requests go to; requests already under way keep theirs.
  void set(std::shared_ptr<Client> client) { client_ = std::move(client); }
  [[nodiscard]] Client* get() const { return client_.get(); }

  boost::asio::awaitable<UpstreamResult> request_token(const TokenRequest& request) override {
    const std::shared_ptr<Client> held = client_;
    co_return co_await held->request_token(request);
  }
  boost::asio::awaitable<std::optional<UpstreamFailure>> revoke(const std::string& client_id, const std::optional<Secret>& secret,
                                                                const Secret& token) override {
    const std::shared_ptr<Client> held = client_;
    co_return co_await held->revoke(client_id, secret, token);
  }
  boost::asio::awaitable<JwksAnswer> fetch_jwks() override {
    const std::shared_ptr<Client> held = client_;
    co_return co_await held->fetch_jwks();
  }

private:
  std::shared_ptr<Client> client_;
};

} // namespace cltoken

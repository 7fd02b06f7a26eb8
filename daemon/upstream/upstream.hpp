#pragma once
// The upstream as the broker sees it: ask for a token, revoke one. An interface so that
// broker tests can swap the network for a script.
#include <optional>

#include <boost/asio/awaitable.hpp>

#include "core/secret.hpp"
#include "core/upstream_response.hpp"

namespace cltoken {

class Upstream {
public:
  virtual ~Upstream() = default;
  /// POST /oauth/token. Never throws for upstream trouble: failures come back classified.
  virtual boost::asio::awaitable<UpstreamResult> request_token(const TokenRequest& request) = 0;
  /// POST /oauth/revoke. nullopt on success.
  virtual boost::asio::awaitable<std::optional<UpstreamFailure>>
  revoke(const std::string& client_id, const std::optional<Secret>& client_secret, const Secret& token) = 0;
};

} // namespace cltoken

#pragma once
// Where the auth server's signing keys come from: the configured auth server's
// /.well-known/jwks.json and nowhere else. An interface so key-cache tests can script it.
#include <string>
#include <variant>

#include <boost/asio/awaitable.hpp>

#include "core/upstream_response.hpp"

namespace cltoken {

/// The JWKS document, or why there is none.
using JwksAnswer = std::variant<std::string, UpstreamFailure>;

class JwksSource {
public:
  virtual ~JwksSource() = default;
  virtual boost::asio::awaitable<JwksAnswer> fetch_jwks() = 0;
};

} // namespace cltoken

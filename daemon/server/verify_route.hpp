#pragma once
// POST /v1/verify: a token a local service was handed, checked with the auth server's
// cached keys (no upstream request for a known kid). Always 200 with valid true or false
// once the body is readable; 400 when it is not {"access_token":"..."}.
#include <string>
#include <variant>

#include <boost/asio/awaitable.hpp>

#include "core/router.hpp"
#include "upstream/token_verifier.hpp"

namespace cltoken {

/// The answer now when the key set in memory holds the token's kid (the common case: no
/// coroutine), else the coroutine that waits for the key set first. `body` is wiped.
std::variant<Response, boost::asio::awaitable<Response>> verify_token(TokenVerifier& verifier, std::string& body,
                                                                      SteadyTime deadline);

} // namespace cltoken

#include "upstream/token_verifier.hpp"

#include <spdlog/spdlog.h>

namespace cltoken {

namespace asio = boost::asio;

VerificationView TokenVerifier::view() const {
  return VerificationView{to_string(settings_.mode), keys_.current()->size(), unverified_, keys_.last_error()};
}

asio::awaitable<std::variant<DecodedJwt, VerifyFailure>>
TokenVerifier::check_issued(std::string_view token, TokenExpectations expect, SteadyTime deadline) {
  co_return co_await check(token, std::move(expect), deadline, settings_.mode == VerifyMode::when_available);
}

asio::awaitable<std::variant<DecodedJwt, VerifyFailure>> TokenVerifier::check_presented(std::string_view token,
                                                                                        SteadyTime deadline) {
  // A named object, not a braced temporary: GCC 12 destroys those twice across co_await.
  TokenExpectations none;
  co_return co_await check(token, std::move(none), deadline, false);
}

std::optional<std::variant<DecodedJwt, VerifyFailure>> TokenVerifier::check_presented_now(std::string_view token) {
  auto decoded = decode_jwt(token);
  if (auto* f = std::get_if<VerifyFailure>(&decoded)) return std::move(*f);
  auto& jwt = std::get<DecodedJwt>(decoded);
  const std::shared_ptr<const KeySet> keys = keys_.held_for(jwt.kid);
  if (!keys) return std::nullopt; // keys_for() fetches (a new kid, a stale set) or waits
  TokenExpectations expect;
  expect.issuer = settings_.issuer;
  expect.skew = settings_.skew;
  return check_with(std::move(jwt), *keys, expect, false);
}

std::variant<DecodedJwt, VerifyFailure> TokenVerifier::check_with(DecodedJwt jwt, const KeySet& keys,
                                                                  const TokenExpectations& expect, bool lenient) {
  if (keys.empty()) {
    if (!lenient) {
      std::string why = keys_.last_error().empty() ? "the auth server's keys are not known yet" : keys_.last_error();
      return VerifyFailure{VerifyReason::keys_unavailable, "signature not checked: " + why};
    }
    // when_available: the auth server answered the token but not its key set. The claims
    // still have to match; the signature is checked once the keys can be had.
    ++unverified_;
    spdlog::warn(
        "token signature not checked: the auth server's key set is not available (upstream.verify = \"when_available\")");
  } else if (auto f = check_signature(jwt, keys)) {
    return std::move(*f);
  }
  if (auto f = check_claims(jwt.claims, expect, clock_.wall_now())) return std::move(*f);
  return jwt;
}

asio::awaitable<std::variant<DecodedJwt, VerifyFailure>> TokenVerifier::check(std::string_view token, TokenExpectations expect,
                                                                              SteadyTime deadline, bool lenient) {
  expect.issuer = settings_.issuer;
  expect.skew = settings_.skew;
  auto decoded = decode_jwt(token);
  if (auto* f = std::get_if<VerifyFailure>(&decoded)) co_return std::move(*f);
  auto& jwt = std::get<DecodedJwt>(decoded);
  // Decoded (copied) before the wait: `token` is the caller's bytes.
  const std::shared_ptr<const KeySet> keys = co_await keys_.keys_for(jwt.kid, deadline);
  co_return check_with(std::move(jwt), *keys, expect, lenient);
}

} // namespace cltoken

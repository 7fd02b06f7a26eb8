#pragma once
// Verifies tokens with the auth server's keys (upstream/signing_keys.hpp) and the checks of
// core/jwt_verify.hpp, as the configured verify mode says: for every token the daemon
// obtains before it is served or stored (VerifyingUpstream) and for POST /v1/verify.
#include <optional>
#include <string_view>
#include <variant>

#include <boost/asio/awaitable.hpp>

#include "core/config.hpp"
#include "core/documents.hpp"
#include "core/jwt_verify.hpp"
#include "upstream/signing_keys.hpp"

namespace cltoken {

struct VerifySettings {
  VerifyMode mode = VerifyMode::when_available;
  std::string issuer;
  Seconds skew{60};
};

class TokenVerifier {
public:
  TokenVerifier(SigningKeys& keys, const Clock& clock, VerifySettings settings)
      : keys_(keys), clock_(clock), settings_(std::move(settings)) {}
  TokenVerifier(const TokenVerifier&) = delete;
  TokenVerifier& operator=(const TokenVerifier&) = delete;

  void set(VerifySettings s) { settings_ = std::move(s); }
  [[nodiscard]] const VerifySettings& settings() const { return settings_; }
  /// Mode, keys held, tokens accepted unchecked, the key set's last error (for status and /metrics).
  [[nodiscard]] VerificationView view() const;
  /// When an unknown kid can next be looked up at the auth server.
  [[nodiscard]] SteadyTime next_key_fetch() const { return keys_.next_fetch(); }

  /// A token the daemon obtained, against what its credential expects (issuer and skew
  /// are filled in here). Under verify = "when_available", a token met before any key
  /// could be had has its claims checked and its signature not (logged); under
  /// "required" it is refused as keys_unavailable; under "off" nothing is checked.
  boost::asio::awaitable<std::variant<DecodedJwt, VerifyFailure>> check_issued(std::string_view token, TokenExpectations expect,
                                                                               SteadyTime deadline);
  /// A token a local service hands over (POST /v1/verify): signature, issuer and expiry,
  /// whatever the mode.
  boost::asio::awaitable<std::variant<DecodedJwt, VerifyFailure>> check_presented(std::string_view token, SteadyTime deadline);

  /// check_presented() without a wait, when the key set in memory holds the token's kid
  /// (or the token is refused before a key is needed); nullopt when a key must be fetched.
  [[nodiscard]] std::optional<std::variant<DecodedJwt, VerifyFailure>> check_presented_now(std::string_view token);

private:
  /// The checks once the keys are known.
  std::variant<DecodedJwt, VerifyFailure> check_with(DecodedJwt jwt, const KeySet& keys, const TokenExpectations& expect,
                                                     bool lenient);
  boost::asio::awaitable<std::variant<DecodedJwt, VerifyFailure>> check(std::string_view token, TokenExpectations expect,
                                                                        SteadyTime deadline, bool lenient);

  SigningKeys& keys_;
  const Clock& clock_;
  VerifySettings settings_;
  std::uint64_t unverified_ = 0;
};

} // namespace cltoken

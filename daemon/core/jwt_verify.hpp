#pragma once
// Verifying a Commerce Layer access token without I/O: the compact JWS is split and
// decoded, its RS512 signature checked with OpenSSL against the pinned key set, and its
// claims matched against what the daemon expects (issuer, application, scope, owner,
// expiry). The key set comes from the configured auth server only: nothing in a token
// chooses where keys come from. Time is passed in.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/jwks.hpp"

namespace cltoken {

/// Why a token is refused; the names are the `reason` of POST /v1/verify.
enum class VerifyReason {
  malformed,         ///< not a compact JWS, bad base64url, not JSON, too large
  unsupported_alg,   ///< alg other than RS512 (none, HS512, ...)
  unknown_kid,       ///< no key of the auth server has this kid
  bad_signature,     ///< the signature does not verify with the auth server's key
  expired,           ///< exp is past
  wrong_issuer,      ///< iss is not the configured auth server
  wrong_application, ///< application.client_id is not the credential's
  wrong_kind,        ///< application.kind is not the credential's
  wrong_scope,       ///< scope not the configured one
  wrong_owner,       ///< a customer token of another customer
  wrong_expiry,      ///< exp contradicts the expires_in the auth server answered
  keys_unavailable,  ///< the auth server's keys could not be had
};
[[nodiscard]] const char* to_string(VerifyReason r);

struct VerifyFailure {
  VerifyReason reason = VerifyReason::malformed;
  std::string message; ///< one line for humans; never quotes the token
};

/// Tokens longer than this are refused unread (Commerce Layer's are about 1 KB).
inline constexpr std::size_t max_jwt_bytes = 16 * 1024;

/// A token split and decoded, signature not yet checked.
struct DecodedJwt {
  std::string kid;
  std::string signing_input; ///< header.payload, as signed
  std::string signature;     ///< raw bytes
  nlohmann::json claims;     ///< an object
};

/// Splits and decodes a compact JWS; refuses any alg but RS512 and any kid that is not
/// sane (valid_kid) before a key is looked at.
[[nodiscard]] std::variant<DecodedJwt, VerifyFailure> decode_jwt(std::string_view token);

/// The RS512 signature against the key of the token's kid.
[[nodiscard]] std::optional<VerifyFailure> check_signature(const DecodedJwt& jwt, const KeySet& keys);

/// What a token must say to be accepted. Empty / nullopt members are not checked.
struct TokenExpectations {
  std::string issuer;                ///< always checked: the auth server's origin
  std::string client_id;             ///< application.client_id
  std::string kind;                  ///< application.kind: "integration", "sales_channel" ...
  std::string scope;                 ///< the configured scope (market, store, stock location)
  std::string owner_id;              ///< owner.id of a customer token
  std::optional<Seconds> expires_in; ///< what the auth server answered with the token
  Seconds skew{60};                  ///< tolerance between exp and now + expires_in
};

/// The claims of a decoded token against the expectations at `now`.
[[nodiscard]] std::optional<VerifyFailure> check_claims(const nlohmann::json& claims, const TokenExpectations& expect,
                                                        WallTime now);

/// decode_jwt, check_signature, check_claims in that order: the first failure, or the
/// decoded token.
[[nodiscard]] std::variant<DecodedJwt, VerifyFailure> verify_jwt(std::string_view token, const KeySet& keys,
                                                                 const TokenExpectations& expect, WallTime now);

/// The claims POST /v1/verify shows: organization, application, owner, market, scope,
/// test flag, iat and exp (and expires_at). Never the token itself.
[[nodiscard]] nlohmann::json public_claims(const nlohmann::json& claims);
/// The text of public_claims(claims) appended to `out`, byte for byte what dumping it
/// gives (invalid UTF-8 replaced), written without building that document.
void append_public_claims(std::string& out, const nlohmann::json& claims);

} // namespace cltoken

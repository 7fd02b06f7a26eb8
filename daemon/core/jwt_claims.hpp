#pragma once
// The few claims of a Commerce Layer access token the daemon needs when it adopts a
// customer login made elsewhere: when it expires and whose it is. The
// signature is not checked here: Sessions has the token verified (core/jwt_verify.hpp)
// before it holds it; this only reads when to refresh it and whose it is.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cltoken {

struct JwtClaims {
  std::int64_t exp = 0;   ///< seconds since the epoch
  std::string owner_id;   ///< owner.id, empty when the token has no owner
  std::string owner_type; ///< owner.type ("Customer")
  std::string scope;
  std::string client_id; ///< application.client_id: the application that obtained it
};

/// The payload of a compact JWS (header.payload.signature); nullopt when the token is not
/// one or has no numeric `exp`.
[[nodiscard]] std::optional<JwtClaims> read_jwt_claims(std::string_view token);

} // namespace cltoken

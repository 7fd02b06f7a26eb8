#pragma once
// The documents of POST /v1/verify (proto/schemas/verify-request.json and
// verify-result.json), without I/O: reading the request body, writing the answer. The
// answer never carries the token: only the claims a holder of the token can read anyway.
#include <optional>
#include <string>
#include <variant>

#include "core/jwt_verify.hpp"
#include "core/secret.hpp"

namespace cltoken {

/// The token of a {"access_token":"..."} body, or nullopt when the body is not one.
/// The body is wiped either way.
[[nodiscard]] std::optional<Secret> read_verify_request(std::string& body);

/// {"valid":true,"claims":{...}} or {"valid":false,"reason":"...","message":"..."}.
[[nodiscard]] std::string verify_answer(const std::variant<DecodedJwt, VerifyFailure>& result);

} // namespace cltoken

#pragma once
// The body of POST /v1/customers/{name}/sessions (session-create-request.schema.json):
// exactly one of four forms. Plain parsing, no I/O; secrets leave the JSON as Secrets.
#include <cstddef>
#include <optional>
#include <string>
#include <variant>

#include "core/secret.hpp"

namespace cltoken {

/// The longest access or refresh token a session request may carry. A Commerce Layer
/// access token is about 1.2 KB and a refresh token 43 bytes; an adopted token is held
/// for as long as the session lives, so its size is what one session can cost.
inline constexpr std::size_t max_customer_token_bytes = 4096;

struct SessionRequest {
  enum class Grant { password, refresh_token, adopt, assertion } grant = Grant::password;
  std::string username;
  std::optional<Secret> password;
  std::optional<Secret> refresh_token;
  std::optional<Secret> access_token;
  std::optional<Secret> assertion;
};

/// The request, or a sentence saying what is wrong with the body (never quoting it: it
/// holds a password). Wipes `body`.
std::variant<SessionRequest, std::string> parse_session_request(std::string& body);

} // namespace cltoken

#pragma once
// The token endpoint's protocol without the network: building request bodies and turning
// (status, headers, body) into a grant or a classified failure. Commerce Layer quirks
// handled here: `errors` is usually an array but sometimes a single object, `Retry-After`
// may be seconds or an HTTP date, unknown fields are ignored.
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/clock.hpp"
#include "core/secret.hpp"

namespace cltoken {

/// A token request. Secrets stay Secrets until the body is built.
struct TokenRequest {
  std::string grant_type = "client_credentials";
  std::string client_id;
  std::optional<Secret> client_secret;
  std::string scope;
  std::optional<std::string> username;
  std::optional<Secret> password;
  std::optional<Secret> refresh_token;
  std::optional<Secret> assertion;
  // Not sent: what the answer's token must also say (core/jwt_verify.hpp).
  std::string application_kind;  ///< "integration" or "sales_channel"; empty = not checked
  std::string expected_owner_id; ///< a refreshed customer token's owner; empty = not checked
};

/// The JSON body for POST /oauth/token. The caller wipes it after sending.
std::string token_request_body(const TokenRequest& r);

/// The JSON body for POST /oauth/revoke.
std::string revoke_request_body(const std::string& client_id, const std::optional<Secret>& client_secret, const Secret& token);

struct TokenGrant {
  Secret access_token;
  std::string token_type = "bearer";
  std::string scope;
  Seconds expires_in{0};
  std::optional<Secret> refresh_token;
  std::string owner_id;
  std::string owner_type;
};

/// What went wrong, in the classes that decide what to do next (and the metric outcome).
enum class FailureKind {
  rate_limited,  ///< 429: stop every request until Retry-After or backoff
  rejected,      ///< 4xx: the credential itself is refused; slow retries only
  server_error,  ///< 5xx or an answer that is not a token response: back off, retry
  network_error, ///< no answer: connect, TLS, reset, timeout
  invalid_token, ///< a token that fails verification (core/jwt_verify.hpp): back off, retry
};
[[nodiscard]] const char* to_string(FailureKind k);

struct UpstreamFailure {
  FailureKind kind = FailureKind::network_error;
  std::string message; ///< for humans: status, logs, 503 bodies. Never a secret.
  std::optional<Seconds> retry_after;
  unsigned http_status = 0;
  std::string code; ///< upstream error title, e.g. "invalid_client", when known
};

using UpstreamResult = std::variant<TokenGrant, UpstreamFailure>;

/// Interprets a token endpoint answer.
UpstreamResult parse_token_response(unsigned status, std::string_view body, std::string_view retry_after, WallTime now);

/// Retry-After as delay-seconds or an IMF-fixdate; nullopt when absent or unreadable.
std::optional<Seconds> parse_retry_after(std::string_view value, WallTime now);

} // namespace cltoken

#pragma once
// Commerce Layer's own token endpoint, POST /oauth/token, answered from the daemon's cache,
// so that code speaking that protocol changes only where it sends the request: the request
// body (JSON or form encoded), which configured credential it names, and Commerce Layer's
// success and error documents. Plain code, no I/O; the handler applies the ACL.
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/secret.hpp"

namespace cltoken {

/// A refusal in Commerce Layer's terms: the HTTP status, the OAuth error (the document's
/// `title`, as upstream writes it) and a sentence that never quotes the request.
struct OAuthError {
  unsigned status = 400;
  std::string error;
  std::string detail;
};

/// The fields of a client_credentials request that the daemon reads; any other field is
/// ignored, as upstream ignores it.
struct OAuthTokenRequest {
  std::string client_id;
  std::optional<Secret> client_secret;
  std::string scope; ///< empty when the request names none
};

/// Parses a request body: a JSON object when it starts with `{`, else
/// application/x-www-form-urlencoded (what the two content types upstream accepts look
/// like). Only `client_credentials` is answered; other grants are refused with a pointer to
/// the customer-session routes. Wipes `body`.
std::variant<OAuthTokenRequest, OAuthError> parse_oauth_token_request(std::string& body);

/// The scope a request or credential stands for: "market:all" when it names none, which is
/// upstream's default for an application and what js-auth sends when given no scope.
std::string_view effective_scope(std::string_view scope);

/// Whether the request names this credential: the same client id and effective scope.
[[nodiscard]] bool names_credential(const OAuthTokenRequest& request, const CredentialConfig& credential);

/// Whether the request's secret is right for the credential, compared in constant time: an
/// integration needs its secret; a sales channel takes none, or its own.
[[nodiscard]] bool secret_accepted(const OAuthTokenRequest& request, const CredentialConfig& credential);

/// Commerce Layer's token response made from the daemon's token document: access_token,
/// token_type, expires_in (what is left), scope and created_at. created_at is `now`, so that
/// created_at + expires_in is the expiry for clients that add them. nullopt when the
/// document is not a token document. Wipes `token_document`.
std::optional<std::string> oauth_token_document(std::string& token_document, WallTime now);

/// The refusal for a request naming no configured credential, or with a wrong secret: the
/// same answer for both, as upstream gives.
OAuthError invalid_client();

/// A daemon error document (error.schema.json) with its status, in Commerce Layer's terms.
OAuthError oauth_error_from(unsigned status, std::string_view daemon_error_document);

/// {"errors":[{"code","title","status","detail"}]}: code is the status's name
/// (UNAUTHORIZED ...), title the OAuth error.
std::string oauth_error_document(const OAuthError& e);

} // namespace cltoken

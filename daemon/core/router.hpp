#pragma once
// HTTP routing as plain functions: a method and target in, a Route out; and the
// response type every handler returns. No sockets here.
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.hpp"
#include "core/held_body.hpp"

namespace cltoken {

struct Response {
  unsigned status = 200;
  std::string_view content_type = "application/json"; ///< always a literal: no allocation per answer
  std::string body;
  /// Instead of `body`, the body as pieces of what the daemon holds: only the serving fast
  /// path sets it, for an answer written before the event that made it ends (the
  /// connection copies what the socket does not take at once).
  HeldBody held;
  std::optional<long> retry_after; ///< seconds, sent as Retry-After
  std::string allow;               ///< for 405: the Allow header (methods of the path)
};

enum class RouteKind {
  get_token,
  invalidate_token,
  revoke_token,
  refresh_token,
  status,
  health,
  metrics,
  reload,
  create_session, ///< POST /v1/customers/{name}/sessions
  get_session,    ///< GET /v1/customers/{name}/sessions/{session}
  end_session,    ///< DELETE /v1/customers/{name}/sessions/{session}
  credentials,    ///< GET /v1/credentials: the ones this peer may use
  oauth_token,    ///< POST /oauth/token: Commerce Layer's own token request
  verify,         ///< POST /v1/verify
  clients,        ///< GET /v1/clients: who used which credential lately (admin)
  not_found,
  method_not_allowed,
  bad_request,
};

struct Route {
  RouteKind kind = RouteKind::not_found;
  std::string credential;                 ///< for token and session routes
  std::string session;                    ///< the session handle (a secret of sorts: never log it)
  std::optional<Seconds> min_ttl;         ///< ?min_ttl=S on GET token or session
  std::string error;                      ///< for bad_request / not_found: what was wrong
  std::string allow;                      ///< for method_not_allowed: the Allow header
  [[nodiscard]] const char* name() const; ///< stable label for metrics
};

/// Routes a request line. Never throws; anything odd becomes not_found or bad_request.
Route route(std::string_view method, std::string_view target);

/// The 404 message for a credential name that is not configured. It does not repeat the
/// name: answers carry no text the client chose (the client knows what it asked for, and
/// cl-tokenctl says it), so nothing in an answer can be mistaken for, or pass for, a token.
inline constexpr std::string_view unknown_credential_message = "no such credential";

/// {"error":{"code","message"}} with the given status.
Response error_response(unsigned status, std::string_view code, std::string_view message);

/// A JSON body with status 200 (or the given one).
Response json_response(std::string body, unsigned status = 200);

} // namespace cltoken

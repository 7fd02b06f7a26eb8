#pragma once
// The broker's and the sessions' domain answers as HTTP: status codes, error codes and Retry-After are
// decided here and nowhere else (docs/protocol.md's error table).
#include "broker/broker.hpp"
#include "core/router.hpp"
#include "core/session_answer.hpp"

namespace cltoken {

/// 200 token document; 404 unknown_credential; 503 upstream_rejected or
/// upstream_unavailable with Retry-After.
[[nodiscard]] Response token_response(TokenAnswer answer);
/// 200 {"refreshed":true,"expires_in":N}, or {"refreshed":false,...,"message"} when
/// nothing was fetched; 404; 503 with Retry-After and why (never the token).
[[nodiscard]] Response refresh_response(TokenAnswer answer);
/// 200 {"revoked":true}; 404; 503 with Retry-After (the token is kept).
[[nodiscard]] Response revoke_response(RevokeAnswer answer);
/// Customer sessions (docs/customer-sessions.md): 200 or 201 token document, 200
/// {"ended":true}; 404 not_found (no such session, or another uid's: the same answer),
/// 410 session_expired, 400 bad_request, 401 invalid_credentials, 429 rate_limited and
/// 503 upstream_unavailable or upstream_rejected, both with Retry-After.
[[nodiscard]] Response session_response(SessionAnswer answer);

} // namespace cltoken

// Status documents used as fixtures by several tests. All but `nulls` are valid against
// proto/schemas/status.schema.json (checked when written; the tests do not read proto/).
#pragma once

namespace fixtures {

/// One credential in each state the contract names, with the daemon's own null fields.
inline constexpr const char* every_state = R"({
  "version": "0.1.0", "started_at": "2026-11-25T10:00:00Z", "uptime_s": 7520,
  "upstream": {"auth_url": "https://auth.commercelayer.io", "requests_last_minute": 3,
               "budget_per_minute": 25, "rate_limited_until": null},
  "credentials": [
    {"name": "backoffice", "kind": "integration", "state": "fresh", "expires_at": "2026-11-25T13:57:20Z",
     "expires_in": 6720, "next_refresh_in": 5000, "last_refresh_at": "2026-11-25T11:57:20Z",
     "last_error": null, "served": 310, "upstream_requests": 12, "upstream_failures": 0},
    {"name": "storefront-eu", "kind": "sales_channel", "state": "refreshing", "expires_at": "2026-11-25T12:09:05Z",
     "expires_in": 245, "next_refresh_in": 0, "last_refresh_at": "2026-11-25T08:09:05Z",
     "last_error": null, "served": 9000, "upstream_requests": 4, "upstream_failures": 0},
    {"name": "reports", "kind": "integration", "state": "stale", "expires_at": "2026-11-25T12:05:59Z",
     "expires_in": 59, "next_refresh_in": 0, "last_refresh_at": "2026-11-25T10:05:59Z",
     "last_error": "upstream timed out", "served": 3, "upstream_requests": 9, "upstream_failures": 2},
    {"name": "new-one", "kind": "integration", "state": "fetching", "expires_at": null,
     "expires_in": null, "next_refresh_in": null, "last_refresh_at": null,
     "last_error": null, "served": 0, "upstream_requests": 1, "upstream_failures": 0},
    {"name": "old", "kind": "integration", "state": "expired", "expires_at": "2026-11-25T12:04:55Z",
     "expires_in": -5, "next_refresh_in": null, "last_refresh_at": "2026-11-25T10:04:55Z",
     "last_error": "upstream answered 401 invalid_client", "served": 12, "upstream_requests": 3,
     "upstream_failures": 3},
    {"name": "broken", "kind": "sales_channel", "state": "failing", "expires_at": null,
     "expires_in": null, "next_refresh_in": 30, "last_refresh_at": null,
     "last_error": "network unreachable", "served": 0, "upstream_requests": 7, "upstream_failures": 7},
    {"name": "idle", "kind": "integration", "state": "empty", "expires_at": null,
     "expires_in": null, "next_refresh_in": null, "last_refresh_at": null,
     "last_error": null, "served": 0, "upstream_requests": 0, "upstream_failures": 0}
  ]
})";

/// Every credential serving: status exits 0.
inline constexpr const char* all_serving = R"({
  "version": "0.1.0", "started_at": "2026-11-25T10:00:00Z", "uptime_s": 42,
  "upstream": {"auth_url": "https://auth.commercelayer.io", "requests_last_minute": 1,
               "budget_per_minute": 25, "rate_limited_until": null},
  "credentials": [
    {"name": "backoffice", "kind": "integration", "state": "fresh", "expires_at": "2026-11-25T12:00:00Z",
     "expires_in": 7158, "next_refresh_in": 5358, "last_refresh_at": "2026-11-25T10:00:00Z",
     "last_error": null, "served": 1, "upstream_requests": 1, "upstream_failures": 0},
    {"name": "reports", "kind": "integration", "state": "stale", "expires_at": "2026-11-25T10:05:00Z",
     "expires_in": 258, "next_refresh_in": 0, "last_refresh_at": "2026-11-25T08:05:00Z",
     "last_error": null, "served": 1, "upstream_requests": 1, "upstream_failures": 0}
  ]
})";

/// Beyond the schema on purpose (proto/schemas/status.schema.json requires most of these):
/// every field null, so the view of an odd or older daemon degrades to dashes, not a crash.
inline constexpr const char* nulls = R"({
  "version": null, "started_at": null, "uptime_s": null,
  "upstream": {"auth_url": null, "requests_last_minute": null, "budget_per_minute": null,
               "rate_limited_until": null},
  "credentials": [
    {"name": "mystery", "kind": null, "state": null, "expires_at": null, "expires_in": null,
     "next_refresh_in": null, "last_refresh_at": null, "last_error": null, "served": null,
     "upstream_requests": null, "upstream_failures": null}
  ]
})";

/// The upstream budget spent and a 429 pause in force.
inline constexpr const char* rate_limited = R"({
  "version": "0.1.0", "started_at": "2026-11-22T08:00:00Z", "uptime_s": 273600,
  "upstream": {"auth_url": "https://auth.commercelayer.io", "requests_last_minute": 25,
               "budget_per_minute": 25, "rate_limited_until": "2026-11-25T12:03:04Z"},
  "credentials": [
    {"name": "backoffice", "kind": "integration", "state": "stale", "expires_at": "2026-11-25T12:10:00Z",
     "expires_in": 416, "next_refresh_in": 54, "last_refresh_at": "2026-11-25T10:10:00Z",
     "last_error": "upstream answered 429 (rate limited), retrying after 54s", "served": 77,
     "upstream_requests": 31, "upstream_failures": 6}
  ]
})";

/// A credential name longer than any heading, and a paragraph of an upstream error with a
/// newline and an escape sequence in it.
inline constexpr const char* long_fields = R"({
  "version": "0.1.0", "started_at": "2026-11-25T10:00:00Z", "uptime_s": 59,
  "upstream": {"auth_url": "https://auth.commercelayer.io", "requests_last_minute": 0,
               "budget_per_minute": 25, "rate_limited_until": null},
  "credentials": [
    {"name": "storefront-europe-west-marketplace-b2b", "kind": "sales_channel", "state": "failing",
     "expires_at": null, "expires_in": null, "next_refresh_in": 12, "last_refresh_at": null,
     "last_error": "upstream answered 401 invalid_client:\nThe client identifier provided is invalid, \u001b[31mthe client failed to authenticate, or the authentication method is unsupported",
     "served": 0, "upstream_requests": 2, "upstream_failures": 2},
    {"name": "a", "kind": "integration", "state": "fresh", "expires_at": "2026-11-25T11:00:00Z",
     "expires_in": 3541, "next_refresh_in": 2641, "last_refresh_at": "2026-11-25T10:00:00Z",
     "last_error": null, "served": 0, "upstream_requests": 1, "upstream_failures": 0}
  ]
})";

/// What a running cl-tokend sent (schema-valid, as tests/integration checks): one credential
/// the auth server rejects, retried now, beside two healthy ones.
inline constexpr const char* daemon_rejected = R"json({
  "version": "0.1.0", "started_at": "2026-11-25T20:09:23Z", "uptime_s": 5,
  "upstream": {"auth_url": "https://localhost:45837", "requests_last_minute": 5,
               "budget_per_minute": 25, "rate_limited_until": null},
  "credentials": [
    {"name": "backoffice", "kind": "integration", "state": "fresh", "expires_at": "2026-11-25T22:09:23Z",
     "expires_in": 7194, "next_refresh_in": 5394, "last_refresh_at": "2026-11-25T20:09:23Z",
     "last_error": null, "served": 0, "upstream_requests": 1, "upstream_failures": 0},
    {"name": "reports", "kind": "integration", "state": "failing", "expires_at": null, "expires_in": null,
     "next_refresh_in": 0, "last_refresh_at": null,
     "last_error": "client_id or client_secret rejected by the auth server (401 invalid_client)",
     "served": 0, "upstream_requests": 3, "upstream_failures": 3},
    {"name": "storefront-eu", "kind": "sales_channel", "state": "fresh", "expires_at": "2026-11-26T00:09:23Z",
     "expires_in": 14394, "next_refresh_in": 10794, "last_refresh_at": "2026-11-25T20:09:23Z",
     "last_error": null, "served": 0, "upstream_requests": 1, "upstream_failures": 0}
  ]
})json";

} // namespace fixtures

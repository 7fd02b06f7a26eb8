#pragma once
// The JSON documents of the socket API (proto/schemas/*.schema.json), rendered from plain
// snapshots. This is the only place that decides their shape.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/client_usage.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/credential_state.hpp"
#include "core/held_body.hpp"
#include "core/secret.hpp"
#include "core/session_table.hpp"

namespace cltoken {

/// "2026-11-25T21:03:04Z"
std::string rfc3339(WallTime t);

/// Converts a monotonic instant to wall time given one (steady, wall) pair read together.
inline WallTime wall_of(SteadyTime t, SteadyTime now, WallTime wall_now) {
  return wall_now + std::chrono::duration_cast<WallTime::duration>(t - now);
}

/// {"credential","kind","access_token","token_type","scope","expires_at","expires_in"}
std::string token_document(const std::string& credential, CredentialKind kind, const CachedToken& token, SteadyTime now,
                           WallTime wall_now);

/// One credential's token document, served thousands of times a second without a JSON
/// serialisation each time (escaping an 800-byte JWT was the largest cost of serving,
/// docs/performance.md). It keeps the document's two token-free parts: everything before
/// the access token's value and everything after it, rendered again only when a byte of
/// them would change (another kind, token type, scope or expiry, or the clock moving
/// expires_in / expires_at to another second). Serving splices the current token between
/// them, so the cache holds no copy of the token: nothing to wipe, nothing to go stale,
/// and about 2 KiB less per credential than keeping the rendered document (1,000
/// credentials: docs/performance.md). A token that JSON would escape (never a JWT) is
/// rendered whole each time instead.
class TokenDocumentCache {
public:
  /// The same bytes as token_document() with these arguments.
  std::string render(const std::string& credential, CredentialKind kind, const CachedToken& token, SteadyTime now,
                     WallTime wall_now);
  /// The same bytes as pieces: the cache's two parts around the token's own bytes, for an
  /// answer written at once; nullopt for a token JSON would escape (render() it).
  /// `verbatim`: json_verbatim() of the token, which its holder knows already.
  std::optional<HeldBody> held(const std::string& credential, CredentialKind kind, const CachedToken& token, bool verbatim,
                               SteadyTime now, WallTime wall_now);

private:
  struct Key {
    CredentialKind kind = CredentialKind::integration;
    SteadyTime expires_at{};
    long expires_in = 0;
    long long expires_at_wall_s = 0;
    std::string token_type;
    std::string scope;
  };
  std::optional<Key> key_;
  std::string head_; ///< {"credential":…,"kind":…,"access_token":"
  std::string tail_; ///< ","token_type":…}
};

/// Everything the status document says about one credential.
struct CredentialView {
  std::string name;
  CredentialKind kind = CredentialKind::integration;
  CredentialStatus state = CredentialStatus::empty;
  std::optional<SteadyTime> expires_at;
  std::optional<SteadyTime> next_refresh;
  std::optional<SteadyTime> last_refresh_at;
  std::string last_error;
  bool rejected = false; ///< the last failure was the auth server refusing the credential
  CredentialCounters counters;
};

/// Customer-session counts: numbers only, never a handle, token or owner.
struct CustomersView {
  std::size_t sessions = 0;
  std::size_t max_sessions = 0;
  std::uint64_t evicted_lru = 0;     ///< dropped to stay within max_sessions
  std::uint64_t evicted_idle = 0;    ///< dropped after idle_timeout_s unused
  std::uint64_t ended = 0;           ///< ended by their owner (DELETE)
  std::uint64_t expired = 0;         ///< ended because the auth server refused the refresh token
  std::uint64_t ended_elsewhere = 0; ///< ended by a logout on another daemon of the fleet
  std::uint64_t from_store = 0;      ///< read back from the store (at start, or created by another daemon)
  /// by outcome: ok, invalid_credentials, rate_limited, failed
  std::map<std::string, std::uint64_t> logins{{"ok", 0}, {"invalid_credentials", 0}, {"rate_limited", 0}, {"failed", 0}};
  /// by outcome: ok, expired, failed, fleet (another daemon's refresh taken from the store)
  std::map<std::string, std::uint64_t> refreshes{{"ok", 0}, {"expired", 0}, {"failed", 0}, {"fleet", 0}};

  /// Sessions held, or a login tried, since the start. The status document leaves
  /// `customers` out until then (status.schema.json: absent when not in use), so a daemon
  /// without customers shows nothing about them; /metrics always has the families.
  [[nodiscard]] bool in_use() const {
    if (sessions > 0) return true;
    for (const auto& [outcome, n] : logins)
      if (n > 0) return true;
    return false;
  }
};

/// Token verification at a glance: whether signatures can be checked now, and how many
/// tokens were accepted without a signature check (upstream.verify = "when_available" while
/// the key set could not be had). Nothing here is secret.
struct VerificationView {
  std::string mode;                    ///< required | when_available | off
  std::size_t keys = 0;                ///< signing keys held; 0: signatures cannot be checked
  std::uint64_t unverified_tokens = 0; ///< tokens served or stored with their signature unchecked
  std::string key_set_error;           ///< why the last key-set fetch failed; empty after a good one
};

struct StatusView {
  std::string version;
  WallTime started_at;
  SteadyTime started_steady;
  std::string auth_url;
  unsigned requests_last_minute = 0;
  unsigned budget_per_minute = 0;
  std::optional<SteadyTime> rate_limited_until;
  std::vector<CredentialView> credentials;
  std::optional<CustomersView> customers;       ///< absent when the daemon holds no session machinery
  std::optional<VerificationView> verification; ///< absent when no verifier is wired in
};

/// A customer session's token document: the fields of token_document(); with a handle
/// (creation) also "session" first and "owner_id" last (session-created.schema.json).
std::string customer_token_document(const CustomerSession& s, SteadyTime now, WallTime wall_now,
                                    const std::string* handle = nullptr);

/// `detailed`: for an admin peer. Others get each credential's name, kind, state and
/// expiry only: how often a credential is served and refreshed, and its last upstream
/// error, say what other services do and are not theirs to see.
std::string status_document(const StatusView& s, SteadyTime now, WallTime wall_now, bool detailed = true);

/// {"credentials":[{"name","kind","client_id","scope"}]}: the credentials a peer may use,
/// for clients that find theirs by client id and scope (js-auth's storage keys). scope is
/// null when the credential names none.
std::string credentials_document(const std::vector<const CredentialConfig*>& credentials);

/// GET /v1/clients: {"window_s","capacity","evicted","clients":[{"principal","unit","uid",
/// "user","credential","requests","refused","first_seen","last_seen"}]}. `user_name` turns
/// a uid into its name, or nullopt.
std::string clients_document(const ClientUsage& usage, SteadyTime now, WallTime wall_now,
                             const std::function<std::optional<std::string>(uid_t)>& user_name);

/// {"live":true,"ready":bool,"credentials_not_ready":[...]}
std::string health_document(bool ready, const std::vector<std::string>& not_ready);

} // namespace cltoken

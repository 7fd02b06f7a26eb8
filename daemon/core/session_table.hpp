#pragma once
// Customer sessions (issue 8, docs/customer-sessions.md) as plain data and decisions, no
// I/O: the table keyed by the SHA-256 of the session handle (the handle itself is never
// kept), ownership by peer uid, LRU eviction over max_sessions and idle eviction, and
// what a read or the refresh sweep should do with a session.
#include <array>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <sys/types.h>

#include "core/clock.hpp"
#include "core/secret.hpp"

namespace cltoken {

/// SHA-256 of a session handle: what the table is keyed by.
using SessionKey = std::array<unsigned char, 32>;

/// The key of a handle. A handle is compared only through its hash, which takes the
/// same time whatever the handle; the table never holds a handle that could leak.
[[nodiscard]] SessionKey session_key(std::string_view handle);

/// Everything a session holds. Tokens are Secrets (wiped when dropped).
struct CustomerSession {
  std::string credential;
  uid_t owner = static_cast<uid_t>(-1);
  Secret access_token;
  std::optional<Secret> refresh_token; ///< none for an adopted token without one
  std::string token_type = "bearer";
  std::string scope;
  std::string owner_id;
  SteadyTime obtained{};   ///< when the current access token was asked for
  SteadyTime expires_at{};
  SteadyTime refresh_at{}; ///< refresh point of the current token (RefreshPolicy)
  SteadyTime last_used{};  ///< created or last read: for idle eviction
  SteadyTime last_read{};  ///< last GET (epoch when never): "in use" when after `obtained`
  bool refreshing = false; ///< a refresh is in flight (single flight per session)
  unsigned failures = 0;   ///< refreshes failed in a row (backoff)
};

/// What a read (GET) should do.
enum class SessionRead {
  serve,             ///< the token is good for min_ttl and not due
  serve_and_refresh, ///< good for min_ttl, but due: answer now, refresh in the background
  refresh_then_serve,///< not good for min_ttl: refresh first, the client waits
  serve_last,        ///< not good for min_ttl, cannot be refreshed, still valid: the best there is
  expired,           ///< expired and cannot be refreshed: the session is over (410)
};

/// The decision for a read at `now` asking for `min_ttl` left.
[[nodiscard]] SessionRead decide_read(const CustomerSession& s, SteadyTime now, Seconds min_ttl);

/// Sessions by key, most recently used first.
class SessionTable {
public:
  SessionTable(std::size_t max_sessions, Seconds idle_timeout) : max_(max_sessions), idle_(idle_timeout) {}

  void set_limits(std::size_t max_sessions, Seconds idle_timeout) {
    max_ = max_sessions;
    idle_ = idle_timeout;
  }

  /// Adds a session (last_used = now). Evicts the least recently used sessions beyond
  /// max_sessions; returns how many. With max_sessions 0 nothing is kept (returns 1).
  std::size_t insert(const SessionKey& key, CustomerSession session, SteadyTime now);

  /// The session for `key` when `owner` created it on `credential`; nullptr otherwise,
  /// so a stranger cannot tell another uid's session from no session at all. Does not
  /// count as use.
  [[nodiscard]] CustomerSession* find(const SessionKey& key, uid_t owner, std::string_view credential);
  /// find() that counts as use: moves the session to the front, last_used = last_read = now.
  [[nodiscard]] CustomerSession* use(const SessionKey& key, uid_t owner, std::string_view credential, SteadyTime now);
  /// Lookup by key alone, for the I/O flow finishing a refresh it started.
  [[nodiscard]] CustomerSession* get(const SessionKey& key);

  bool erase(const SessionKey& key);

  /// Drops the least recently used sessions beyond max_sessions (after the limit was
  /// lowered); returns how many.
  std::size_t evict_over_max();

  /// Drops sessions unused for longer than idle_timeout; returns how many.
  std::size_t evict_idle(SteadyTime now);

  /// Sessions to refresh now without a client waiting: in use (read since their current
  /// token was obtained), past their refresh point, refreshable, not already refreshing.
  /// A session nobody reads costs no upstream request (it is refreshed on demand).
  [[nodiscard]] std::vector<SessionKey> due_for_refresh(SteadyTime now) const;

  /// Drops every session of a credential (removed from the config, or its identity changed).
  std::size_t drop_credential(std::string_view credential);

  [[nodiscard]] std::size_t size() const { return map_.size(); }
  [[nodiscard]] std::size_t max_sessions() const { return max_; }

private:
  struct KeyHash {
    std::size_t operator()(const SessionKey& k) const noexcept {
      std::size_t h = 0; // the key is already a uniform hash: its first bytes will do
      for (std::size_t i = 0; i < sizeof h; ++i) h = (h << 8) | k[i];
      return h;
    }
  };
  struct Slot {
    CustomerSession session;
    std::list<SessionKey>::iterator lru;
  };

  std::size_t max_;
  Seconds idle_;
  std::list<SessionKey> lru_; ///< most recently used first
  std::unordered_map<SessionKey, Slot, KeyHash> map_;
};

} // namespace cltoken

#pragma once
// Customer sessions (docs/customer-sessions.md) as plain data and decisions, no
// I/O: the table keyed by the SHA-256 of the session handle (the handle itself is never
// kept), ownership by peer uid, LRU eviction over max_sessions and idle eviction, and
// what a read or the refresh sweep should do with a session.
#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "core/clock.hpp"
#include "core/secret.hpp"
#include "core/session_record.hpp"

namespace cltoken {

/// SHA-256 of a session handle: what the table is keyed by.
using SessionKey = std::array<unsigned char, 32>;

/// The key of a handle. A handle is compared only through its hash, which takes the
/// same time whatever the handle; the table never holds a handle that could leak.
[[nodiscard]] SessionKey session_key(std::string_view handle);

/// What a read (GET) should do.
enum class SessionRead {
  serve,              ///< the token is good for min_ttl and not due
  serve_and_refresh,  ///< good for min_ttl, but due: answer now, refresh in the background
  refresh_then_serve, ///< not good for min_ttl: refresh first, the client waits
  serve_last,         ///< not good for min_ttl, cannot be refreshed, still valid: the best there is
  expired,            ///< expired and cannot be refreshed: the session is over (410)
};

/// The decision for a read at `now` asking for `min_ttl` left. A still valid token is
/// refreshed for a read only when a new one would help, as for credentials: its lifetime
/// exceeds min_ttl and the current one is not brand new (min_ttl longer than the token
/// lives would otherwise cost an upstream request per read), and not while a failed
/// refresh backs off.
[[nodiscard]] SessionRead decide_read(const CustomerSession& s, SteadyTime now, Seconds min_ttl);

/// What a session is counted as against [customers] max_memory_mib: its tokens and
/// strings plus a fixed overhead for the session and its table entries (measured:
/// docs/customer-sessions.md).
[[nodiscard]] std::size_t session_bytes(const CustomerSession& s);

/// Sessions by key, most recently used first. Bounded in all (max_sessions, max_bytes)
/// and per owner uid (max_per_peer), fairly: over a bound in all, the session evicted is
/// the least recently used one of the uid holding the most bytes, so one uid flooding the
/// table evicts its own sessions, never those of a uid holding fewer.
class SessionTable {
public:
  SessionTable(std::size_t max_sessions, Seconds idle_timeout) : max_(max_sessions), idle_(idle_timeout) {}

  void set_limits(std::size_t max_sessions, Seconds idle_timeout) {
    max_ = max_sessions;
    idle_ = idle_timeout;
  }
  /// Per-uid session count and total bytes (session_bytes); 0: no such bound.
  void set_peer_limits(std::size_t max_per_peer, std::size_t max_bytes) {
    max_per_peer_ = max_per_peer;
    max_bytes_ = max_bytes;
  }

  /// Adds a session (last_used = now). Evicts beyond the bounds (its owner's own least
  /// recently used sessions over max_per_peer first); returns how many. With
  /// max_sessions 0 nothing is kept (returns 1).
  std::size_t insert(const SessionKey& key, CustomerSession session, SteadyTime now);
  /// Counts a session's bytes again after its tokens changed (a refresh), and evicts over
  /// max_bytes; returns how many were evicted.
  std::size_t resize(const SessionKey& key);

  /// The session for `key` when `owner` created it on `credential`; nullptr otherwise,
  /// so a stranger cannot tell another uid's session from no session at all. Does not
  /// count as use.
  [[nodiscard]] CustomerSession* find(const SessionKey& key, uid_t owner, std::string_view credential);
  /// find() that counts as use: moves the session to the front, last_used = last_read = now.
  [[nodiscard]] CustomerSession* use(const SessionKey& key, uid_t owner, std::string_view credential, SteadyTime now);
  /// Lookup by key alone, for the I/O flow finishing a refresh it started.
  [[nodiscard]] CustomerSession* get(const SessionKey& key);

  bool erase(const SessionKey& key);

  /// Drops sessions beyond the bounds (after a limit was lowered), fairly as above;
  /// returns how many.
  std::size_t evict_over_max();

  /// Drops sessions unused for longer than idle_timeout; returns how many.
  std::size_t evict_idle(SteadyTime now);

  /// Sessions to refresh now without a client waiting: in use (read since their current
  /// token was obtained), past their refresh point, refreshable, not already refreshing.
  /// A session nobody reads costs no upstream request (it is refreshed on demand).
  [[nodiscard]] std::vector<SessionKey> due_for_refresh(SteadyTime now) const;

  /// Drops every session of a credential (removed from the config, or its identity changed).
  std::size_t drop_credential(std::string_view credential);

  /// Sessions evicted or dropped since the last take_evicted(), with their credential:
  /// recorded only once keep_evicted(true) was called (a store then forgets them).
  struct Evicted {
    SessionKey key;
    std::string credential;
  };
  void keep_evicted(bool on) { keep_evicted_ = on; }
  [[nodiscard]] std::vector<Evicted> take_evicted() { return std::exchange(evicted_, {}); }
  /// Every session, for saving them all (a store that was unreachable).
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [key, slot] : map_) f(key, slot.session);
  }

  [[nodiscard]] std::size_t size() const { return map_.size(); }
  [[nodiscard]] std::size_t max_sessions() const { return max_; }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }
  [[nodiscard]] std::size_t sessions_of(uid_t owner) const;

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
    std::list<SessionKey>::iterator owner_lru;
    std::size_t bytes = 0;
  };
  struct Owner {
    std::size_t bytes = 0;
    std::list<SessionKey> lru; ///< this uid's sessions, most recently used first
  };
  using Map = std::unordered_map<SessionKey, Slot, KeyHash>;

  /// Removes a session with its entries in both lists and its owner's counts.
  void remove(Map::iterator it);
  /// Removes the least recently used session of `owner`.
  void evict_oldest_of(uid_t owner);
  /// remove() of a session that did not end by erase(): noted for the store.
  void evict(Map::iterator it);

  std::size_t max_;
  Seconds idle_;
  std::size_t max_per_peer_ = 0;
  std::size_t max_bytes_ = 0;
  std::size_t bytes_ = 0;
  std::list<SessionKey> lru_; ///< most recently used first
  Map map_;
  std::map<uid_t, Owner> owners_;
  bool keep_evicted_ = false;
  std::vector<Evicted> evicted_;
};

} // namespace cltoken

#pragma once
// Where customer sessions are kept beyond this daemon's memory (docs/customer-sessions.md,
// "Sessions in the store"): the state directory's session journal, so that a restart keeps
// every session, or a Redis shared by a fleet, so that a session created on one daemon is
// read, refreshed and ended on any other. Records are sealed (core/sealed_session.hpp);
// a store never holds a usable token or a handle.
//
// The sessions driver (daemon/sessions) calls these hooks and nothing else. Like the token
// store, every implementation carries on without error when its storage is unavailable:
// a store can cost a session that another daemon holds, never a client's answer about a
// session this daemon holds.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/session_record.hpp"
#include "core/session_storage.hpp"
#include "core/session_table.hpp"

namespace cltoken {

/// Which session a call is about. The credential reference must stay valid for the call.
struct SessionSubject {
  const CredentialConfig& credential;
  std::string auth_url;
  SessionKey key;
};

class SessionStore {
public:
  virtual ~SessionStore() = default;

  /// True when other daemons share this store: find(), before_refresh() and the ended
  /// feed are worth asking.
  [[nodiscard]] virtual bool shared() const = 0;

  /// Every session kept, once at start (the file store), of the sales channels in `config`
  /// with the identity they have there; a shared store returns none and is asked per
  /// session with find().
  /// Synchronous: it runs once, before the socket serves anything.
  virtual std::vector<KeptSession> load_all(const Config& config) = 0;

  /// A session this daemon does not hold (a shared store).
  virtual boost::asio::awaitable<SessionLookup> find(SessionSubject s) = 0;

  /// Before refreshing a session held at `generation`: one daemon of the fleet refreshes,
  /// the others wait for its tokens, bounded by the longest a refresh can take (then go).
  virtual boost::asio::awaitable<FleetRefresh> before_refresh(SessionSubject s, std::uint64_t generation) = 0;

  /// A session created, adopted or refreshed here: keep it (store if its generation is
  /// newer than the stored one and it was not ended meanwhile).
  virtual boost::asio::awaitable<SessionSaved> save(SessionSubject s, SessionRecord record) = 0;

  /// A logout here: the session ends for every daemon. Returns the newest record the store
  /// held, whose tokens the caller revokes too (another daemon may have refreshed it).
  virtual boost::asio::awaitable<std::optional<SessionRecord>> end(SessionSubject s) = 0;

  /// Gone from this daemon's memory without a logout (evicted, expired, refused by the
  /// auth server). The file store forgets it; a shared store keeps it for the other
  /// daemons (it expires there on its own) unless `dead`: its refresh token is refused.
  virtual boost::asio::awaitable<void> dropped(SessionSubject s, bool dead) = 0;

  /// Sessions ended on other daemons since the last call (a shared store; empty otherwise).
  virtual boost::asio::awaitable<std::vector<SessionKey>> ended_elsewhere() = 0;

  /// `available` is called each time a shared store becomes reachable again (after a
  /// first failure or a lost connection), so that sessions it could not keep are saved.
  virtual void on_available(std::function<void()> available) { (void)available; }

  /// Shutting down: pending writes are flushed, background work ends.
  virtual void stop() {}
};

/// Sessions in memory only: store.backend = "memory", or [customers] store = false.
class NoSessionStore final : public SessionStore {
public:
  [[nodiscard]] bool shared() const override { return false; }
  std::vector<KeptSession> load_all(const Config&) override { return {}; }
  boost::asio::awaitable<SessionLookup> find(SessionSubject) override { co_return SessionLookup{}; }
  boost::asio::awaitable<FleetRefresh> before_refresh(SessionSubject, std::uint64_t) override { co_return FleetRefresh{}; }
  boost::asio::awaitable<SessionSaved> save(SessionSubject, SessionRecord) override { co_return SessionSaved::stored; }
  boost::asio::awaitable<std::optional<SessionRecord>> end(SessionSubject) override { co_return std::nullopt; }
  boost::asio::awaitable<void> dropped(SessionSubject, bool) override { co_return; }
  boost::asio::awaitable<std::vector<SessionKey>> ended_elsewhere() override { co_return std::vector<SessionKey>{}; }
};

} // namespace cltoken

#pragma once
// store.backend = "redis" for customer sessions: every daemon of a fleet reads, refreshes
// and ends the sessions any of them created (docs/customer-sessions.md, "A fleet").
//
//   PREFIX:{s:ID}:rec        hash {gen, blob: sealed session}, expiring when its refresh token would
//   PREFIX:{s:ID}:lock       the refresh lock: SET NX PX, value = a random owner id
//   PREFIX:{s:ID}:end        the session was ended (logged out): no daemon may save it again
//   PREFIX:{sessions}:seq    a counter, and
//   PREFIX:{sessions}:ended  a sorted set of the ids ended, scored by that counter: the feed
//                            each daemon polls every store.session_poll_ms
//
// ID is the session's store id (core/sealed_session.hpp), a keyed hash: Redis never holds
// a handle, nor anything that tells which handle a record belongs to. The scripts make
// each step atomic: a refresh either finds newer tokens, or takes the lock, or learns
// who holds it; a save stores only a newer generation and never after the end mark; an
// end sets the mark, takes the newest record and deletes it. So a logout racing a refresh
// on another host leaves no live refresh token: either the logout sees (and revokes) the
// refreshed tokens, or the refresh's save sees the mark (and its daemon revokes them).
#include <map>
#include <memory>
#include <set>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "store/redis_client.hpp"
#include "store/session_store.hpp"

namespace cltoken {

class RedisSessionStore final : public SessionStore {
public:
  /// `client`: the daemon's one Redis connection (the token store's). `lock_ttl`: the
  /// longest a refresh can take, as for credentials' fetch lock.
  RedisSessionStore(boost::asio::any_io_executor executor, std::shared_ptr<RedisClient> client, const Config& config,
                    Millis lock_ttl, const Clock& clock);

  [[nodiscard]] bool shared() const override { return true; }
  std::vector<KeptSession> load_all(const Config&) override { return {}; }
  boost::asio::awaitable<SessionLookup> find(SessionSubject s) override;
  boost::asio::awaitable<FleetRefresh> before_refresh(SessionSubject s, std::uint64_t generation) override;
  boost::asio::awaitable<SessionSaved> save(SessionSubject s, SessionRecord record) override;
  boost::asio::awaitable<std::optional<SessionRecord>> end(SessionSubject s) override;
  boost::asio::awaitable<void> dropped(SessionSubject s, bool dead) override;
  boost::asio::awaitable<std::vector<SessionKey>> ended_elsewhere() override;
  void on_available(std::function<void()> available) override { available_ = std::move(available); }

  /// The client reconnected (RedisStore's hook): ends that could not be marked are marked
  /// now, then the sessions driver saves what it could not.
  boost::asio::awaitable<void> reconnected();

private:
  struct Keys {
    std::string id;
    std::string rec;
    std::string lock;
    std::string end;
  };
  /// nullopt when the credential has no key material (load_config refuses that).
  [[nodiscard]] std::optional<Keys> keys_of(const SessionSubject& s);
  /// A sealed record read from Redis as one to hold here; nullopt (logged) when refused.
  std::optional<SessionRecord> open(const SessionSubject& s, const Keys& k, const std::string& blob);
  /// Marks `k` ended and takes its newest record; nullopt reply: unreachable.
  boost::asio::awaitable<std::optional<RedisReply>> mark_ended(const Keys& k);

  boost::asio::any_io_executor executor_;
  std::shared_ptr<RedisClient> client_;
  StoreConfig store_;
  Seconds record_ttl_;
  Millis lock_ttl_;
  const Clock& clock_;
  std::function<void()> available_;
  std::map<std::string, SessionKey> ids_;      ///< store id -> key, of the sessions this daemon holds
  std::map<std::string, Keys> pending_ends_;   ///< logouts made while Redis was unreachable
  std::map<std::string, std::string> holding_; ///< store id -> our owner id of a refresh lock we hold
  long long feed_seen_ = -1;                   ///< the feed's counter as last read; -1: not yet
};

} // namespace cltoken

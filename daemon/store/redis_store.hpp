#pragma once
// store.backend = "redis": a fleet of daemons shares each credential's token through one
// Redis, as a second tier behind each daemon's memory (docs/store.md).
//
//   PREFIX:{NAME:IDENTITY}:token  hash {exp: Unix ms, blob: sealed record}, expiring with the token
//   PREFIX:{NAME:IDENTITY}:lock   the fetch lock: SET NX PX, value = a random owner id
//   PREFIX:keyset:IDENTITY        the auth server's key set, sealed (core/sealed_key_set.hpp)
//
// Before a fetch one atomic script either returns a token newer than the caller's, or
// takes the lock, or reports who holds it; a daemon that finds the lock held keeps serving
// its current token and polls every store.poll_ms, bounded by the lock's lifetime, until
// the holder's token appears (or the lock expires and it may fetch itself). Saving is a
// second script: store if newer, then release the lock if it is still ours (compare and
// delete). Values are sealed (core/sealed_token.hpp): Redis never holds a usable token.
#include <map>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "core/random.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/store_identity.hpp"
#include "store/redis_client.hpp"
#include "store/token_store.hpp"

namespace cltoken {

class RedisStore final : public TokenStore {
public:
  /// `lock_ttl`: the longest a fetch can take (connect + request timeouts of the upstream,
  /// plus one store operation to save its result).
  RedisStore(boost::asio::any_io_executor executor, StoreConfig config, Millis lock_ttl, const Clock& clock, Random& random);
  ~RedisStore() override;
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  /// Connects in the background; calls before the connection is up find Redis absent.
  /// After each (re)connection the held tokens are put back, then `also` runs (the
  /// customer sessions' part).
  void start(std::function<boost::asio::awaitable<void>()> also = {});
  /// The one connection, which the customer sessions' store shares.
  [[nodiscard]] std::shared_ptr<RedisClient> client() const { return client_; }
  void stop() override;

  boost::asio::awaitable<std::optional<CachedToken>> load(StoreSubject s) override;
  boost::asio::awaitable<std::optional<CachedToken>> before_fetch(StoreSubject s, SteadyTime newer_than) override;
  boost::asio::awaitable<void> save(StoreSubject s, CachedToken token) override;
  boost::asio::awaitable<void> forget(StoreSubject s) override;
  [[nodiscard]] bool shared() const override { return true; }
  boost::asio::awaitable<std::optional<StoredKeySet>> load_key_set(KeySetKey key) override;
  boost::asio::awaitable<void> save_key_set(KeySetKey key, StoredKeySet set) override;

private:
  struct Keys {
    std::string token;
    std::string lock;
  };
  [[nodiscard]] Keys keys_of(const SealingKey& k) const;
  /// Opens a sealed record read from Redis; logs and returns nullopt when it is refused.
  std::optional<CachedToken> open(const SealingKey& k, const Keys& keys, const std::string& blob);
  /// After a (re)connection: puts back every token this daemon knows (store if newer), so
  /// a Redis that restarted empty is shared again without an upstream request.
  boost::asio::awaitable<void> republish();

  struct Known {
    std::string lock_key;
    std::int64_t expires_ms = 0;
    std::string sealed;
  };
  boost::asio::any_io_executor executor_;
  StoreConfig config_;
  Millis lock_ttl_;
  const Clock& clock_;
  std::shared_ptr<RedisClient> client_;
  std::map<std::string, Known> known_;         ///< by token key: the newest record seen or saved
  std::map<std::string, std::string> holding_; ///< by token key: our owner id of a lock we hold
};

} // namespace cltoken

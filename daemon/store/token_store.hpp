#pragma once
// Where the broker keeps tokens beyond its own memory (docs/store.md): a state file that
// survives restarts, or a Redis shared by a fleet of daemons. The auth server's key set is
// kept there too (sealed the same way), so a restart verifies tokens without fetching it.
// The broker and the signing keys call these few hooks and nothing else; every implementation carries on without error when its storage
// is unavailable, so a store can cost an upstream request but never a client's answer.
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "core/config.hpp"
#include "core/credential_state.hpp"
#include "core/sealed_key_set.hpp"

namespace cltoken {

/// Which token a call is about: a credential and the auth server its tokens are for (part
/// of its identity). The reference must stay valid for the whole call.
struct StoreSubject {
  const CredentialConfig& credential;
  std::string auth_url;
};

class TokenStore {
public:
  virtual ~TokenStore() = default;

  /// A stored token of this credential and identity that is still valid, if any: called
  /// before the scheduler's first pass and for credentials a reload adds.
  virtual boost::asio::awaitable<std::optional<CachedToken>> load(StoreSubject s) = 0;

  /// Before fetching (only asked when shared()): a token some other daemon obtained that
  /// expires after `newer_than`, or nullopt: fetch. While another daemon holds the fetch
  /// lock this waits, bounded, for its token; nullopt after acquiring the lock, after the
  /// bound, or when the store cannot be reached.
  virtual boost::asio::awaitable<std::optional<CachedToken>> before_fetch(StoreSubject s, SteadyTime newer_than) = 0;

  /// A token this daemon just obtained and accepted: keep it (and release the fetch lock).
  virtual boost::asio::awaitable<void> save(StoreSubject s, CachedToken token) = 0;

  /// The credential's token was revoked: stored copies must not come back.
  virtual boost::asio::awaitable<void> forget(StoreSubject s) = 0;

  /// Shutting down: ends the store's own background work (a connection keeper). Calls
  /// under way end by their own deadlines.
  virtual void stop() {}

  /// True when other daemons share this store, so before_fetch() is worth asking.
  [[nodiscard]] virtual bool shared() const = 0;

  /// The key set last kept under `key` (sealed for its auth server and issuer), or nullopt
  /// when there is none or it does not open (logged). Whether it is too old is the caller's
  /// question (stale_key_set()).
  virtual boost::asio::awaitable<std::optional<StoredKeySet>> load_key_set(KeySetKey key) = 0;
  /// A key set just fetched from the auth server: keep it, sealed under `key`.
  virtual boost::asio::awaitable<void> save_key_set(KeySetKey key, StoredKeySet set) = 0;
};

/// store.backend = "memory": nothing outlives the process and nothing is shared.
class MemoryStore final : public TokenStore {
public:
  boost::asio::awaitable<std::optional<CachedToken>> load(StoreSubject) override { co_return std::nullopt; }
  boost::asio::awaitable<std::optional<CachedToken>> before_fetch(StoreSubject, SteadyTime) override { co_return std::nullopt; }
  boost::asio::awaitable<void> save(StoreSubject, CachedToken) override { co_return; }
  boost::asio::awaitable<void> forget(StoreSubject) override { co_return; }
  [[nodiscard]] bool shared() const override { return false; }
  boost::asio::awaitable<std::optional<StoredKeySet>> load_key_set(KeySetKey) override { co_return std::nullopt; }
  boost::asio::awaitable<void> save_key_set(KeySetKey, StoredKeySet) override { co_return; }
};

} // namespace cltoken

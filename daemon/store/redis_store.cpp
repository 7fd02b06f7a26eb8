#include "store/redis_store.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "async/clock_timer.hpp"
#include "async/spawn.hpp"

#include "core/sealed_key_set.hpp"
#include "core/sealed_token.hpp"
#include "core/store_crypto.hpp"

namespace cltoken {

namespace asio = boost::asio;

namespace {

// KEYS[1] token hash, KEYS[2] lock; ARGV[1] "newer than" (Unix ms), ARGV[2] owner id,
// ARGV[3] lock lifetime (ms). One script, so that no daemon can slip between "no newer
// token" and "lock taken": either it sees the token, or it holds the lock, or it learns
// how long the holder has left.
constexpr std::string_view gate_script = R"lua(
local exp = redis.call('HGET', KEYS[1], 'exp')
if exp and tonumber(exp) > tonumber(ARGV[1]) then
  return {'token', redis.call('HGET', KEYS[1], 'blob')}
end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  return {'lock'}
end
return {'held', redis.call('PTTL', KEYS[2])}
)lua";

// KEYS[1] token hash, KEYS[2] lock; ARGV[1] expiry (Unix ms), ARGV[2] sealed record,
// ARGV[3] owner id or "". Keeps the newer of the stored and the offered token (a slow
// daemon never overwrites a newer token with its older one), expires it with the token,
// and releases the lock only if it is still ours (compare and delete: a lock that expired
// and was taken by another daemon is not ours to release).
constexpr std::string_view save_script = R"lua(
local cur = redis.call('HGET', KEYS[1], 'exp')
local stored = 0
if not cur or tonumber(cur) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'exp', ARGV[1], 'blob', ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], ARGV[1])
  stored = 1
end
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('DEL', KEYS[2])
end
return stored
)lua";

std::int64_t unix_ms(WallTime t) { return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count(); }

/// Two wall <-> steady conversions may move a time by a few milliseconds: a stored token
/// must be later than ours by more than this to count as newer.
constexpr Millis newer_slack{1000};

} // namespace

RedisStore::RedisStore(asio::any_io_executor executor, StoreConfig config, Millis lock_ttl, const Clock& clock, Random& random)
    : executor_(executor), config_(std::move(config)), lock_ttl_(lock_ttl), clock_(clock),
      client_(std::make_shared<RedisClient>(executor, config_, clock, random)) {}

RedisStore::~RedisStore() { client_->stop(); }

void RedisStore::stop() { client_->stop(); }

void RedisStore::start(std::function<asio::awaitable<void>()> also) {
  client_->start([this, also = std::move(also)]() -> asio::awaitable<void> {
    co_await republish();
    if (also) co_await also();
  });
}

RedisStore::Keys RedisStore::keys_of(const SealingKey& k) const {
  // One hash tag for both keys: the scripts touch them together, which Redis Cluster
  // would require to be in one slot.
  const std::string base = config_.prefix + ":{" + k.credential + ":" + k.identity + "}:";
  return {base + "token", base + "lock"};
}

std::optional<CachedToken> RedisStore::open(const SealingKey& k, const Keys& keys, const std::string& blob) {
  auto opened = unseal_token(blob, k.material, k.credential, k.identity);
  if (auto* bad = std::get_if<UnsealError>(&opened)) {
    spdlog::error("credential {}: token in redis {} refused: {}", k.credential, client_->where(), bad->message);
    return std::nullopt;
  }
  auto& token = std::get<StoredToken>(opened);
  if (token.expires_at <= clock_.wall_now()) return std::nullopt;
  Known& known = known_[keys.token];
  if (unix_ms(token.expires_at) > known.expires_ms) known = Known{keys.lock, unix_ms(token.expires_at), blob};
  return to_cached(token, clock_);
}

asio::awaitable<std::optional<CachedToken>> RedisStore::load(StoreSubject s) {
  auto key = sealing_key(s.credential, s.auth_url, config_);
  if (!key) co_return std::nullopt;
  if (!client_->connected()) co_await client_->first_attempt();
  const Keys keys = keys_of(*key);
  std::vector<std::string> hget{"HGET", keys.token, "blob"}; // built first: GCC 12 and braced lists in co_await
  auto reply = co_await client_->call(std::move(hget));
  if (!reply || reply->type != RedisReply::Type::string) {
    if (reply && reply->is_error()) spdlog::warn("redis {}: HGET answered {}", client_->where(), reply->str);
    co_return std::nullopt;
  }
  co_return open(*key, keys, reply->str);
}

asio::awaitable<std::optional<CachedToken>> RedisStore::before_fetch(StoreSubject s, SteadyTime newer_than) {
  auto key = sealing_key(s.credential, s.auth_url, config_);
  if (!key || !client_->connected()) co_return std::nullopt;
  const Keys keys = keys_of(*key);
  const std::string owner = store_crypto::to_hex(store_crypto::random_bytes(16));
  const std::int64_t newer_ms = newer_than == SteadyTime::min() ? 0 : unix_ms(clock_.to_wall(newer_than)) + newer_slack.count();
  // Waiting longer than a whole fetch of the holder gains nothing: by then its lock has
  // expired and the next attempt takes it.
  const SteadyTime bound = clock_.now() + lock_ttl_ + config_.timeout;
  bool waiting_logged = false;
  for (;;) {
    std::vector<std::string> gate{"EVAL",    std::string(gate_script), "2",   keys.token,
                                  keys.lock, std::to_string(newer_ms), owner, std::to_string(lock_ttl_.count())};
    auto reply = co_await client_->call(std::move(gate));
    if (!reply) co_return std::nullopt; // Redis unreachable: fetch alone
    const auto& e = reply->elements;
    if (reply->type != RedisReply::Type::array || e.empty()) {
      spdlog::warn("redis {}: unexpected answer to the fetch lock script{}{}", client_->where(), reply->is_error() ? ": " : "",
                   reply->is_error() ? reply->str : "");
      co_return std::nullopt;
    }
    if (e[0].is("token") && e.size() == 2 && e[1].type == RedisReply::Type::string) {
      // A refused record (logged) means: fetch our own; our save then replaces it.
      co_return open(*key, keys, e[1].str);
    }
    if (e[0].is("lock")) {
      holding_[keys.token] = owner;
      spdlog::debug("credential {}: fetch lock taken in redis", key->credential);
      co_return std::nullopt;
    }
    if (!e[0].is("held") || e.size() != 2 || e[1].type != RedisReply::Type::integer) {
      spdlog::warn("redis {}: unexpected answer to the fetch lock script", client_->where());
      co_return std::nullopt;
    }
    const SteadyTime now = clock_.now();
    if (now >= bound) {
      spdlog::warn("credential {}: another daemon has held the fetch lock for longer than a fetch takes; fetching here",
                   key->credential);
      co_return std::nullopt;
    }
    if (!waiting_logged) {
      spdlog::debug("credential {}: another daemon is fetching this token; waiting for it", key->credential);
      waiting_logged = true;
    }
    // Poll rather than subscribe: this wait happens once per refresh at most, a poll is
    // one round trip, and polling cannot miss a message while reconnecting.
    // PTTL is -1 for a lock without expiry (not one of ours: someone set it by hand);
    // then poll at the normal pace until the bound.
    const Millis left = e[1].integer > 0 ? Millis(e[1].integer) : config_.poll;
    ClockTimer t(executor_, now + std::min(config_.poll, left));
    co_await t.async_wait(use_tuple);
  }
}

asio::awaitable<void> RedisStore::save(StoreSubject s, CachedToken token) {
  auto key = sealing_key(s.credential, s.auth_url, config_);
  if (!key) co_return;
  const Keys keys = keys_of(*key);
  StoredToken stored = to_stored(token, key->credential, key->identity, clock_);
  Known record{keys.lock, unix_ms(stored.expires_at), {}};
  try {
    record.sealed = seal_token(stored, key->material);
  } catch (const std::exception& e) {
    spdlog::error("credential {}: cannot seal the token for redis: {}", key->credential, e.what());
    co_return;
  }
  known_[keys.token] = record; // republished after a reconnection if this save does not get through
  std::string owner;
  if (auto it = holding_.find(keys.token); it != holding_.end()) {
    owner = std::move(it->second);
    holding_.erase(it);
  }
  std::vector<std::string> eval{"EVAL",    std::string(save_script),          "2",           keys.token,
                                keys.lock, std::to_string(record.expires_ms), record.sealed, owner};
  auto reply = co_await client_->call(std::move(eval));
  if (reply && reply->is_error()) spdlog::warn("redis {}: saving a token failed: {}", client_->where(), reply->str);
  else if (reply)
    spdlog::debug("credential {}: token {} in redis", key->credential, reply->integer == 1 ? "saved" : "already newer");
}

asio::awaitable<void> RedisStore::forget(StoreSubject s) {
  auto key = sealing_key(s.credential, s.auth_url, config_);
  if (!key) co_return;
  const Keys keys = keys_of(*key);
  known_.erase(keys.token);
  std::vector<std::string> del{"DEL", keys.token};
  auto reply = co_await client_->call(std::move(del));
  if (!reply)
    spdlog::warn("credential {}: could not remove the revoked or invalidated token from redis (unreachable)", key->credential);
}

asio::awaitable<std::optional<StoredKeySet>> RedisStore::load_key_set(KeySetKey key) {
  if (!client_->connected()) co_await client_->first_attempt();
  std::vector<std::string> get{"GET", config_.prefix + ":keyset:" + key.identity};
  auto reply = co_await client_->call(std::move(get));
  if (!reply || reply->type != RedisReply::Type::string) {
    if (reply && reply->is_error()) spdlog::warn("redis {}: GET answered {}", client_->where(), reply->str);
    co_return std::nullopt;
  }
  auto opened = unseal_key_set(reply->str, key);
  if (auto* bad = std::get_if<UnsealError>(&opened)) {
    spdlog::error("key set in redis {} refused: {}; fetching it from the auth server", client_->where(), bad->message);
    co_return std::nullopt;
  }
  co_return std::move(std::get<StoredKeySet>(opened));
}

asio::awaitable<void> RedisStore::save_key_set(KeySetKey key, StoredKeySet set) {
  std::string sealed;
  try {
    sealed = seal_key_set(set, key);
  } catch (const std::exception& e) {
    spdlog::error("cannot seal the key set for redis: {}", e.what());
    co_return;
  }
  // No expiry: the set is replaced at every fetch, and a reader refuses one older than its
  // upstream.jwks_max_age_s (the fleet's daemons may not agree on that value).
  std::vector<std::string> set_cmd{"SET", config_.prefix + ":keyset:" + key.identity, std::move(sealed)};
  auto reply = co_await client_->call(std::move(set_cmd));
  if (!reply) spdlog::warn("redis {}: could not keep the key set (unreachable)", client_->where());
  else if (reply->is_error()) spdlog::warn("redis {}: keeping the key set failed: {}", client_->where(), reply->str);
}

asio::awaitable<void> RedisStore::republish() {
  const std::int64_t now_ms = unix_ms(clock_.wall_now());
  std::vector<std::pair<std::string, Known>> todo;
  for (auto it = known_.begin(); it != known_.end();) {
    if (it->second.expires_ms <= now_ms) {
      it = known_.erase(it);
      continue;
    }
    todo.emplace_back(it->first, it->second);
    ++it;
  }
  unsigned stored = 0;
  for (const auto& [token_key, k] : todo) {
    std::vector<std::string> eval{"EVAL",     std::string(save_script),     "2",      token_key,
                                  k.lock_key, std::to_string(k.expires_ms), k.sealed, ""};
    auto reply = co_await client_->call(std::move(eval));
    if (!reply) co_return; // lost again; the next connection tries again
    if (reply->type == RedisReply::Type::integer && reply->integer == 1) ++stored;
  }
  if (stored > 0) spdlog::info("redis {}: {} held tokens put back", client_->where(), stored);
}

} // namespace cltoken

#include "store/redis_session_store.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "async/clock_timer.hpp"
#include "async/spawn.hpp"
#include "core/sealed_session.hpp"
#include "core/store_crypto.hpp"
#include "core/store_identity.hpp"
#include "store/session_owner.hpp"

namespace cltoken {

namespace asio = boost::asio;

namespace {

// KEYS rec, lock, end; ARGV generation held, owner id, lock lifetime (ms).
constexpr std::string_view refresh_script = R"lua(
if redis.call('EXISTS', KEYS[3]) == 1 then return {'ended'} end
local g = redis.call('HGET', KEYS[1], 'gen')
if g and tonumber(g) > tonumber(ARGV[1]) then return {'newer', redis.call('HGET', KEYS[1], 'blob')} end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return {'lock'} end
return {'held', redis.call('PTTL', KEYS[2])}
)lua";

// KEYS rec, lock, end; ARGV generation, sealed record, expiry (Unix ms), owner id or "".
// Never after the end mark; only a newer generation; the lock released if still ours.
constexpr std::string_view save_script = R"lua(
local out = 'older'
if redis.call('EXISTS', KEYS[3]) == 1 then
  out = 'ended'
else
  local g = redis.call('HGET', KEYS[1], 'gen')
  if not g or tonumber(g) < tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[1], 'gen', ARGV[1], 'blob', ARGV[2])
    redis.call('PEXPIREAT', KEYS[1], ARGV[3])
    out = 'stored'
  end
end
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('DEL', KEYS[2]) end
return out
)lua";

// KEYS rec, end; ARGV mark lifetime (ms). The mark first: from here no save succeeds.
constexpr std::string_view end_script = R"lua(
local blob = redis.call('HGET', KEYS[1], 'blob')
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
redis.call('DEL', KEYS[1])
return blob
)lua";

// KEYS seq, ended; ARGV id, entries kept. The counter orders the feed whatever the
// daemons' clocks say.
constexpr std::string_view feed_script = R"lua(
local n = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], n, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[2]) - 1)
return n
)lua";

/// Enough for any fleet's logouts between two polls; a daemon that missed more (it was
/// cut off longer) learns of the rest when it next refreshes those sessions.
constexpr int feed_kept = 100000;
/// Entries one poll takes at most.
constexpr int feed_batch = 1000;

std::int64_t unix_ms(WallTime t) { return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count(); }

} // namespace

RedisSessionStore::RedisSessionStore(asio::any_io_executor executor, std::shared_ptr<RedisClient> client, const Config& config,
                                     Millis lock_ttl, const Clock& clock)
    : executor_(executor), client_(std::move(client)), store_(config.store), record_ttl_(config.customers.refresh_token_lifetime),
      lock_ttl_(lock_ttl), clock_(clock) {}

std::optional<RedisSessionStore::Keys> RedisSessionStore::keys_of(const SessionSubject& s) {
  const Secret* material = store_key_material(s.credential, store_);
  if (material == nullptr) return std::nullopt;
  Keys k;
  k.id = session_store_id(*material, s.credential.name, s.key);
  const std::string base = store_.prefix + ":{s:" + k.id + "}:";
  k.rec = base + "rec";
  k.lock = base + "lock";
  k.end = base + "end";
  return k;
}

std::optional<SessionRecord> RedisSessionStore::open(const SessionSubject& s, const Keys& k, const std::string& blob) {
  auto key = sealing_key(s.credential, s.auth_url, store_);
  if (!key) return std::nullopt;
  auto opened = unseal_session(blob, key->material, key->credential, key->identity, k.id);
  if (auto* bad = std::get_if<UnsealError>(&opened)) {
    spdlog::error("credential {}: customer session in redis {} refused: {}", key->credential, client_->where(), bad->message);
    return std::nullopt;
  }
  auto& stored = std::get<StoredSession>(opened);
  if (stored.key != s.key) return std::nullopt; // a keyed hash collision: not this session
  // Whose it is here: the uid its owner's name has on this host; none, none here.
  auto owner = session_owner_uid(stored.owner_name);
  if (!owner) {
    spdlog::info("credential {}: customer session in redis belongs to {}, who has no uid on this host", key->credential,
                 stored.owner_name);
    return std::nullopt;
  }
  ids_[k.id] = s.key;
  return to_session_record(stored, *owner, clock_);
}

asio::awaitable<SessionLookup> RedisSessionStore::find(SessionSubject s) {
  auto k = keys_of(s);
  if (!k) co_return SessionLookup{};
  std::vector<std::string> hget{"HGET", k->rec, "blob"};
  auto reply = co_await client_->call(std::move(hget));
  if (!reply) co_return SessionLookup{SessionLookup::Kind::unreachable, std::nullopt};
  if (reply->type != RedisReply::Type::string) {
    if (reply->is_error()) spdlog::warn("redis {}: HGET answered {}", client_->where(), reply->str);
    co_return SessionLookup{};
  }
  auto record = open(s, *k, reply->str);
  if (!record) co_return SessionLookup{};
  co_return SessionLookup{SessionLookup::Kind::found, std::move(record)};
}

asio::awaitable<FleetRefresh> RedisSessionStore::before_refresh(SessionSubject s, std::uint64_t generation) {
  auto k = keys_of(s);
  if (!k) co_return FleetRefresh{};
  const std::string owner = store_crypto::to_hex(store_crypto::random_bytes(16));
  // Waiting longer than a whole refresh of the holder gains nothing: its lock has expired.
  const SteadyTime bound = clock_.now() + lock_ttl_ + store_.timeout;
  for (;;) {
    std::vector<std::string> eval{
        "EVAL", std::string(refresh_script),      "3", k->rec, k->lock, k->end, std::to_string(generation),
        owner,  std::to_string(lock_ttl_.count())};
    auto reply = co_await client_->call(std::move(eval));
    if (!reply) {
      spdlog::warn("credential {}: redis unreachable; refreshing a customer session without the fleet's lock", s.credential.name);
      co_return FleetRefresh{};
    }
    const auto& e = reply->elements;
    if (reply->type != RedisReply::Type::array || e.empty()) {
      spdlog::warn("redis {}: unexpected answer to the session refresh script{}{}", client_->where(),
                   reply->is_error() ? ": " : "", reply->is_error() ? reply->str : "");
      co_return FleetRefresh{};
    }
    if (e[0].is("ended")) {
      ids_.erase(k->id);
      co_return FleetRefresh{FleetRefresh::Kind::ended, std::nullopt};
    }
    if (e[0].is("newer") && e.size() == 2 && e[1].type == RedisReply::Type::string) {
      auto record = open(s, *k, e[1].str);
      if (record) co_return FleetRefresh{FleetRefresh::Kind::newer, std::move(record)};
      co_return FleetRefresh{}; // refused (logged): refresh with what is held here
    }
    if (e[0].is("lock")) {
      holding_[k->id] = owner;
      co_return FleetRefresh{};
    }
    if (!e[0].is("held") || e.size() != 2 || e[1].type != RedisReply::Type::integer) {
      spdlog::warn("redis {}: unexpected answer to the session refresh script", client_->where());
      co_return FleetRefresh{};
    }
    const SteadyTime now = clock_.now();
    if (now >= bound) {
      spdlog::warn("credential {}: another daemon has held a customer session's refresh lock for longer than a refresh "
                   "takes; refreshing here",
                   s.credential.name);
      co_return FleetRefresh{};
    }
    const Millis left = e[1].integer > 0 ? Millis(e[1].integer) : store_.poll;
    ClockTimer t(executor_, now + std::min(store_.poll, left));
    co_await t.async_wait(use_tuple);
  }
}

asio::awaitable<SessionSaved> RedisSessionStore::save(SessionSubject s, SessionRecord record) {
  auto key = sealing_key(s.credential, s.auth_url, store_);
  auto k = keys_of(s);
  if (!key || !k) co_return SessionSaved::unreachable;
  StoredSession stored = to_stored_session(record, s.key, key->identity, k->id, session_owner_name(record.owner), clock_);
  WallTime until = stored.expires_at;
  if (stored.refresh_token)
    until = std::max(until, stored.obtained_at + std::chrono::duration_cast<WallTime::duration>(record_ttl_));
  std::string sealed;
  try {
    sealed = seal_session(stored, key->material);
  } catch (const std::exception& e) {
    spdlog::error("credential {}: cannot seal a customer session for redis: {}", key->credential, e.what());
    co_return SessionSaved::unreachable;
  }
  ids_[k->id] = s.key;
  std::string owner;
  if (auto it = holding_.find(k->id); it != holding_.end()) {
    owner = std::move(it->second);
    holding_.erase(it);
  }
  std::vector<std::string> eval{
      "EVAL", std::string(save_script),       "3",  k->rec, k->lock, k->end, std::to_string(record.generation),
      sealed, std::to_string(unix_ms(until)), owner};
  auto reply = co_await client_->call(std::move(eval));
  if (!reply) co_return SessionSaved::unreachable;
  if (reply->is("stored")) co_return SessionSaved::stored;
  if (reply->is("older")) co_return SessionSaved::older;
  if (reply->is("ended")) {
    ids_.erase(k->id);
    co_return SessionSaved::ended;
  }
  spdlog::warn("redis {}: saving a customer session failed: {}", client_->where(), reply->is_error() ? reply->str : "?");
  co_return SessionSaved::unreachable;
}

asio::awaitable<std::optional<RedisReply>> RedisSessionStore::mark_ended(const Keys& k) {
  const Millis mark_ttl = std::chrono::duration_cast<Millis>(record_ttl_);
  std::vector<std::string> eval{"EVAL", std::string(end_script), "2", k.rec, k.end, std::to_string(mark_ttl.count())};
  auto reply = co_await client_->call(std::move(eval));
  if (!reply) co_return std::nullopt;
  const std::string feed = store_.prefix + ":{sessions}:";
  std::vector<std::string> add{"EVAL", std::string(feed_script), "2", feed + "seq", feed + "ended",
                               k.id,   std::to_string(feed_kept)};
  auto fed = co_await client_->call(std::move(add));
  if (!fed || fed->is_error())
    spdlog::warn("redis {}: a logout could not be announced to the fleet; other daemons notice it at their next refresh",
                 client_->where());
  co_return reply;
}

asio::awaitable<std::optional<SessionRecord>> RedisSessionStore::end(SessionSubject s) {
  auto k = keys_of(s);
  if (!k) co_return std::nullopt;
  ids_.erase(k->id);
  auto reply = co_await mark_ended(*k);
  if (!reply) {
    // Marked when Redis is back; meanwhile the revoke upstream ends the tokens this daemon knows.
    spdlog::warn("credential {}: redis unreachable at a customer logout; the fleet is told when it is back", s.credential.name);
    pending_ends_[k->id] = *k;
    co_return std::nullopt;
  }
  if (reply->type != RedisReply::Type::string) co_return std::nullopt;
  co_return open(s, *k, reply->str);
}

asio::awaitable<void> RedisSessionStore::dropped(SessionSubject s, bool dead) {
  auto k = keys_of(s);
  if (!k) co_return;
  ids_.erase(k->id);
  if (!dead) co_return; // the other daemons may still use it: it expires on its own
  std::vector<std::string> del{"DEL", k->rec};
  co_await client_->call(std::move(del));
}

asio::awaitable<std::vector<SessionKey>> RedisSessionStore::ended_elsewhere() {
  std::vector<SessionKey> out;
  const std::string feed = store_.prefix + ":{sessions}:";
  std::vector<std::string> get{"GET", feed + "seq"};
  auto seq = co_await client_->call(std::move(get));
  if (!seq) co_return out;
  const long long now_seq = seq->type == RedisReply::Type::string ? std::atoll(seq->str.c_str()) : 0;
  if (feed_seen_ < 0 || now_seq < feed_seen_) {
    // The first look, or a Redis that lost its data: start from here.
    feed_seen_ = now_seq;
    co_return out;
  }
  if (now_seq == feed_seen_) co_return out;
  std::vector<std::string> range{
      "ZRANGEBYSCORE",           feed + "ended", "(" + std::to_string(feed_seen_), "+inf", "WITHSCORES", "LIMIT", "0",
      std::to_string(feed_batch)};
  auto reply = co_await client_->call(std::move(range));
  if (!reply || reply->type != RedisReply::Type::array) co_return out;
  const auto& e = reply->elements;
  for (std::size_t i = 0; i + 1 < e.size(); i += 2) {
    feed_seen_ = std::max(feed_seen_, std::atoll(e[i + 1].str.c_str()));
    if (auto it = ids_.find(e[i].str); it != ids_.end()) {
      out.push_back(it->second);
      ids_.erase(it);
    }
  }
  co_return out;
}

asio::awaitable<void> RedisSessionStore::reconnected() {
  while (!pending_ends_.empty()) {
    const Keys k = pending_ends_.begin()->second;
    if (!co_await mark_ended(k)) co_return; // lost again
    pending_ends_.erase(k.id);
  }
  if (available_) available_();
}

} // namespace cltoken

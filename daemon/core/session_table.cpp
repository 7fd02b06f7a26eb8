#include "core/session_table.hpp"

#include <openssl/sha.h>

#include <algorithm>

#include "core/refresh_policy.hpp"

namespace cltoken {

SessionKey session_key(std::string_view handle) {
  SessionKey k{};
  SHA256(reinterpret_cast<const unsigned char*>(handle.data()), handle.size(), k.data());
  return k;
}

SessionRead decide_read(const CustomerSession& s, SteadyTime now, Seconds min_ttl) {
  const bool can_refresh = s.refresh_token.has_value();
  const bool valid = now < s.expires_at;
  const bool enough = valid && s.expires_at - now >= min_ttl;
  if (enough) return (can_refresh && now >= s.refresh_at) ? SessionRead::serve_and_refresh : SessionRead::serve;
  if (can_refresh && valid) {
    const bool can_help = new_token_helps(s.obtained, s.expires_at - s.obtained, min_ttl, now);
    const bool backing_off = s.failures > 0 && now < s.refresh_at;
    if (!can_help || backing_off) return SessionRead::serve_last;
  }
  if (can_refresh) return SessionRead::refresh_then_serve;
  return valid ? SessionRead::serve_last : SessionRead::expired;
}

std::size_t session_bytes(const CustomerSession& s) {
  // What the strings and tokens add to a session's fixed part, its two list nodes and
  // its hash-table node: 1,843 bytes measured (bench/session_memory.py) for a 1,181-byte
  // token and a 43-byte refresh token, so about 620 bytes besides them; a little more
  // here, so that the count is never below what a session really takes.
  constexpr std::size_t overhead = 640;
  return overhead + s.access_token.reveal().size() + (s.refresh_token ? s.refresh_token->reveal().size() : 0) +
         s.credential.size() + s.scope.size() + s.owner_id.size() + s.token_type.size();
}

std::size_t SessionTable::insert(const SessionKey& key, CustomerSession session, SteadyTime now) {
  if (max_ == 0) return 1;
  session.last_used = now;
  if (auto it = map_.find(key); it != map_.end()) remove(it); // 256 random bits: only in tests
  const uid_t owner = session.owner;
  const std::size_t size = session_bytes(session);
  Owner& o = owners_[owner];
  lru_.push_front(key);
  o.lru.push_front(key);
  o.bytes += size;
  bytes_ += size;
  map_.emplace(key, Slot{std::move(session), lru_.begin(), o.lru.begin(), size});
  std::size_t evicted = 0;
  // Over its own bound, a uid loses its own least recently used sessions.
  while (max_per_peer_ != 0 && sessions_of(owner) > max_per_peer_) {
    evict_oldest_of(owner);
    ++evicted;
  }
  return evicted + evict_over_max();
}

std::size_t SessionTable::resize(const SessionKey& key) {
  auto it = map_.find(key);
  if (it == map_.end()) return 0;
  const std::size_t size = session_bytes(it->second.session);
  Owner& o = owners_[it->second.session.owner];
  o.bytes = o.bytes - it->second.bytes + size;
  bytes_ = bytes_ - it->second.bytes + size;
  it->second.bytes = size;
  return evict_over_max();
}

std::size_t SessionTable::evict_over_max() {
  std::size_t evicted = 0;
  while (!map_.empty() && (map_.size() > max_ || (max_bytes_ != 0 && bytes_ > max_bytes_))) {
    // The uid holding the most bytes gives one up. Few uids use a daemon: a scan is cheap.
    auto biggest = owners_.begin();
    for (auto o = owners_.begin(); o != owners_.end(); ++o)
      if (o->second.bytes > biggest->second.bytes) biggest = o;
    evict_oldest_of(biggest->first);
    ++evicted;
  }
  return evicted;
}

void SessionTable::evict_oldest_of(uid_t owner) { evict(map_.find(owners_.at(owner).lru.back())); }

void SessionTable::evict(Map::iterator it) {
  if (keep_evicted_) evicted_.push_back(Evicted{it->first, it->second.session.credential});
  remove(it);
}

void SessionTable::remove(Map::iterator it) {
  auto o = owners_.find(it->second.session.owner);
  o->second.lru.erase(it->second.owner_lru);
  o->second.bytes -= it->second.bytes;
  if (o->second.lru.empty()) owners_.erase(o);
  bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  map_.erase(it);
}

std::size_t SessionTable::sessions_of(uid_t owner) const {
  auto o = owners_.find(owner);
  return o == owners_.end() ? 0 : o->second.lru.size();
}

CustomerSession* SessionTable::get(const SessionKey& key) {
  auto it = map_.find(key);
  return it == map_.end() ? nullptr : &it->second.session;
}

CustomerSession* SessionTable::find(const SessionKey& key, uid_t owner, std::string_view credential) {
  CustomerSession* s = get(key);
  if (s == nullptr || s->owner != owner || s->credential != credential) return nullptr;
  return s;
}

CustomerSession* SessionTable::use(const SessionKey& key, uid_t owner, std::string_view credential, SteadyTime now) {
  CustomerSession* s = find(key, owner, credential);
  if (s == nullptr) return nullptr;
  auto& slot = map_.find(key)->second;
  lru_.splice(lru_.begin(), lru_, slot.lru);
  auto& mine = owners_.at(owner).lru;
  mine.splice(mine.begin(), mine, slot.owner_lru);
  s->last_used = now;
  s->last_read = now;
  return s;
}

bool SessionTable::erase(const SessionKey& key) {
  auto it = map_.find(key);
  if (it == map_.end()) return false;
  remove(it);
  return true;
}

std::size_t SessionTable::evict_idle(SteadyTime now) {
  // The list is ordered by last use, so the idle ones are all at its back.
  std::size_t evicted = 0;
  while (!lru_.empty()) {
    auto it = map_.find(lru_.back());
    if (now - it->second.session.last_used <= idle_) break;
    evict(it);
    ++evicted;
  }
  return evicted;
}

std::vector<SessionKey> SessionTable::due_for_refresh(SteadyTime now) const {
  std::vector<SessionKey> due;
  // A whole scan: a refresh moves `obtained` but not the list order, so the list alone
  // cannot say where in-use sessions end. Cheap next to one upstream request.
  for (const auto& key : lru_) {
    const auto& s = map_.find(key)->second.session;
    if (s.refreshing || !s.refresh_token || now < s.refresh_at) continue;
    if (s.last_read <= s.obtained) continue; // not read since: refresh on demand
    due.push_back(key);
  }
  return due;
}

std::size_t SessionTable::drop_credential(std::string_view credential) {
  std::size_t n = 0;
  for (auto it = lru_.begin(); it != lru_.end();) {
    auto m = map_.find(*it);
    ++it; // remove() erases the entry `it` was at
    if (m->second.session.credential == credential) {
      evict(m);
      ++n;
    }
  }
  return n;
}

} // namespace cltoken

#include "core/session_table.hpp"

#include <openssl/sha.h>

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
  if (can_refresh) return SessionRead::refresh_then_serve;
  return valid ? SessionRead::serve_last : SessionRead::expired;
}

std::size_t SessionTable::insert(const SessionKey& key, CustomerSession session, SteadyTime now) {
  if (max_ == 0) return 1;
  session.last_used = now;
  if (auto it = map_.find(key); it != map_.end()) { // 256 random bits: only in tests
    lru_.erase(it->second.lru);
    map_.erase(it);
  }
  lru_.push_front(key);
  map_.emplace(key, Slot{std::move(session), lru_.begin()});
  return evict_over_max();
}

std::size_t SessionTable::evict_over_max() {
  std::size_t evicted = 0;
  while (map_.size() > max_) {
    map_.erase(lru_.back());
    lru_.pop_back();
    ++evicted;
  }
  return evicted;
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
  s->last_used = now;
  s->last_read = now;
  return s;
}

bool SessionTable::erase(const SessionKey& key) {
  auto it = map_.find(key);
  if (it == map_.end()) return false;
  lru_.erase(it->second.lru);
  map_.erase(it);
  return true;
}

std::size_t SessionTable::evict_idle(SteadyTime now) {
  // The list is ordered by last use, so the idle ones are all at its back.
  std::size_t evicted = 0;
  while (!lru_.empty()) {
    auto it = map_.find(lru_.back());
    if (now - it->second.session.last_used <= idle_) break;
    map_.erase(it);
    lru_.pop_back();
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
    if (m->second.session.credential == credential) {
      map_.erase(m);
      it = lru_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

} // namespace cltoken

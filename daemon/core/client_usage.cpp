#include "core/client_usage.hpp"

namespace cltoken {

namespace {
ClientUsage::Row row_key_parts(const PeerIdentity& peer, std::string_view credential) {
  ClientUsage::Row r;
  r.credential = std::string(credential);
  if (peer.unit) r.unit = peer.unit->name;
  r.uid = peer.uid;
  return r;
}
} // namespace

ClientUsage::ClientUsage(std::size_t capacity, SteadyClock::duration window)
    : capacity_(capacity == 0 ? 1 : capacity), window_(window) {}

void ClientUsage::expire(SteadyTime now) {
  while (!lru_.empty() && now - lru_.back().last_seen >= window_) {
    const Row& old = lru_.back();
    index_.erase(Key{old.credential, old.unit.value_or(""), old.unit ? 0 : old.uid});
    lru_.pop_back();
  }
}

void ClientUsage::record(const PeerIdentity& peer, std::string_view credential, bool refused, SteadyTime now) {
  expire(now);
  const std::tuple<std::string_view, std::string_view, uid_t> key{
      credential, peer.unit ? std::string_view(peer.unit->name) : std::string_view(), peer.unit ? 0 : peer.uid};
  auto found = index_.find(key);
  if (found == index_.end()) {
    if (lru_.size() >= capacity_) {
      const Row& old = lru_.back();
      index_.erase(Key{old.credential, old.unit.value_or(""), old.unit ? 0 : old.uid});
      lru_.pop_back();
      ++evicted_;
    }
    Row row = row_key_parts(peer, credential);
    row.first_seen = now;
    lru_.push_front(std::move(row));
    found = index_.emplace(Key{std::get<0>(key), std::get<1>(key), std::get<2>(key)}, lru_.begin()).first;
  } else {
    lru_.splice(lru_.begin(), lru_, found->second); // to the front; the iterator stays valid
  }
  Row& row = *found->second;
  row.uid = peer.uid;
  row.last_seen = now;
  ++row.requests;
  if (refused) ++row.refused;
}

std::vector<ClientUsage::Row> ClientUsage::rows(SteadyTime now) const {
  std::vector<Row> out;
  for (const Row& r : lru_) {
    if (now - r.last_seen >= window_) break; // the rest are older still
    out.push_back(r);
  }
  return out;
}

} // namespace cltoken

#include "core/idle_connections.hpp"

namespace cltoken {

IdleConnections::Id IdleConnections::add(SteadyTime since, bool first, Close close) {
  const Id id = next_++;
  waiting_.emplace_hint(waiting_.end(), id, Entry{since, first, std::move(close)});
  return id;
}

void IdleConnections::remove(Id id) { waiting_.erase(id); }

std::vector<IdleConnections::Close> IdleConnections::take_expired(SteadyTime now, Millis timeout) {
  std::vector<Close> out;
  auto it = waiting_.begin();
  for (; it != waiting_.end() && it->second.since + timeout <= now; ++it) out.push_back(std::move(it->second.close));
  waiting_.erase(waiting_.begin(), it);
  return out;
}

std::vector<IdleConnections::Close> IdleConnections::take_served() {
  std::vector<Close> out;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->second.first) {
      ++it;
      continue;
    }
    out.push_back(std::move(it->second.close));
    it = waiting_.erase(it);
  }
  return out;
}

std::optional<SteadyTime> IdleConnections::next_expiry(Millis timeout) const {
  if (waiting_.empty()) return std::nullopt;
  return waiting_.begin()->second.since + timeout;
}

} // namespace cltoken

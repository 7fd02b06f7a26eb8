#include "core/upstream_budget.hpp"

namespace cltoken {

void UpstreamBudget::prune(SteadyTime now) {
  for (auto it = caused_.begin(); it != caused_.end();) {
    auto& times = it->second;
    while (!times.empty() && times.front() + span_ <= now) times.pop_front();
    it = times.empty() ? caused_.erase(it) : std::next(it);
  }
}

unsigned UpstreamBudget::rank(std::optional<uid_t> peer, SteadyTime now) {
  if (!peer) return 0;
  auto it = caused_.find(*peer);
  if (it == caused_.end()) return 0;
  auto& times = it->second;
  while (!times.empty() && times.front() + span_ <= now) times.pop_front();
  return static_cast<unsigned>(times.size());
}

void UpstreamBudget::charge(std::optional<uid_t> peer, SteadyTime now) {
  if (!peer) return;
  prune(now); // bounded by the peers active within one window
  caused_[*peer].push_back(now);
}

bool UpstreamBudget::try_take(std::optional<uid_t> peer, SteadyTime now, unsigned reserve) {
  if (!window_.available(now) || window_.remaining(now) <= reserve) return false;
  // Queued credential work of a better rank keeps its place: this peer waits behind it.
  if (queued_rank_ && *queued_rank_ < rank(peer, now) + (peer ? 0u : 1u)) return false;
  window_.start(now);
  charge(peer, now);
  return true;
}

Millis UpstreamBudget::rate_limited(const UpstreamFailure& f, SteadyTime now, const RefreshPolicy& policy, double u01) {
  const Millis pause = policy.rate_limit_pause(f.retry_after, ++strikes_, u01);
  window_.pause_until(now + pause);
  pause_reason_ = f.message;
  return pause;
}

} // namespace cltoken

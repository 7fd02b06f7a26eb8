#include "core/peer_rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace cltoken {

double PeerRateLimiter::refill(const Bucket& b, SteadyTime now) const {
  const double gained = std::chrono::duration<double>(now - b.at) / std::chrono::duration<double>(interval_);
  return std::min(static_cast<double>(burst_), b.tokens + std::max(0.0, gained));
}

std::optional<Millis> PeerRateLimiter::admit(uid_t uid, SteadyTime now) {
  // Forget full buckets so the map holds only uids that logged in lately.
  for (auto it = buckets_.begin(); it != buckets_.end();)
    it = refill(it->second, now) >= burst_ && it->first != uid ? buckets_.erase(it) : std::next(it);
  auto [it, fresh] = buckets_.try_emplace(uid, Bucket{static_cast<double>(burst_), now});
  Bucket& b = it->second;
  b.tokens = fresh ? b.tokens : refill(b, now);
  b.at = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return std::nullopt;
  }
  const double missing = 1.0 - b.tokens;
  return Millis(static_cast<long>(std::ceil(missing * static_cast<double>(interval_.count()))));
}

} // namespace cltoken

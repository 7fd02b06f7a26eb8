#include "core/refresh_policy.hpp"

#include <algorithm>
#include <cmath>

namespace cltoken {

SteadyTime RefreshPolicy::refresh_at(SteadyTime obtained, Seconds lifetime, double u) const {
  u = std::clamp(u, -1.0, 1.0);
  const double fraction = std::clamp(at + jitter * u, 0.01, 0.99);
  const auto offset = std::chrono::duration_cast<SteadyClock::duration>(
      std::chrono::duration<double>(static_cast<double>(lifetime.count()) * fraction));
  if (min_ttl.count() > 0 && lifetime >= 2 * min_ttl)
    return std::min(obtained + offset, obtained + (lifetime - min_ttl));
  return obtained + offset;
}

Millis RefreshPolicy::backoff(unsigned failures, double u01) const {
  if (failures == 0) return Millis(0);
  u01 = std::clamp(u01, 0.0, 1.0);
  const double exp = std::min<double>(failures - 1, 40); // 2^40 ms already exceeds any cap
  const double step = std::min(static_cast<double>(backoff_initial.count()) * std::pow(2.0, exp),
                               static_cast<double>(backoff_max.count()));
  return Millis(static_cast<Millis::rep>(step / 2 + u01 * step / 2));
}

Millis RefreshPolicy::rate_limit_pause(std::optional<Seconds> retry_after, unsigned strikes, double u01) const {
  if (retry_after && retry_after->count() > 0) return *retry_after;
  return backoff(std::max(1u, strikes), u01);
}

} // namespace cltoken

#include "core/refresh_policy.hpp"

#include <algorithm>
#include <cmath>

namespace cltoken {

namespace {
SteadyClock::duration scaled(Seconds d, double fraction) {
  return std::chrono::duration_cast<SteadyClock::duration>(
      std::chrono::duration<double>(static_cast<double>(d.count()) * fraction));
}
} // namespace

bool new_token_helps(SteadyTime obtained, SteadyClock::duration lifetime, Seconds min_ttl, SteadyTime now) {
  const auto min_age = std::max<SteadyClock::duration>(Seconds(1), lifetime / 20);
  return lifetime > min_ttl && now - obtained >= min_age;
}

std::optional<SteadyTime> RefreshPolicy::reissue_from(SteadyTime obtained, Seconds lifetime) const {
  if (reissue_window.count() <= 0 || reissue_window >= lifetime) return std::nullopt;
  // The answer's expires_in is whole seconds counted when the server answered, after the
  // request was sent: the window opens up to a second or so after our estimate. A quarter
  // of the window at most, so a short one (tests) is not used up by the margin.
  const SteadyClock::duration margin = std::min<SteadyClock::duration>(Seconds(2), reissue_window / 4);
  return obtained + (lifetime - reissue_window) + margin;
}

SteadyTime RefreshPolicy::refresh_at(SteadyTime obtained, Seconds lifetime, double u) const {
  u = std::clamp(u, -1.0, 1.0);
  const double fraction = std::clamp(at + jitter * u, 0.01, 0.99);
  const bool min_ttl_applies = min_ttl.count() > 0 && lifetime >= 2 * min_ttl;
  SteadyTime planned = obtained + scaled(lifetime, fraction);
  if (min_ttl_applies) planned = std::min(planned, obtained + (lifetime - min_ttl));
  const auto opens = reissue_from(obtained, lifetime);
  if (!opens || planned >= *opens) return planned;
  // Asked before the upstream would answer with a new token: refresh once the window
  // opens instead, spread over the first 2 x jitter of it so a fleet's daemons (and a
  // host's credentials) do not arrive together.
  SteadyTime in_window = *opens + scaled(reissue_window, (u + 1.0) * jitter);
  if (min_ttl_applies) in_window = std::max(*opens, std::min(in_window, obtained + (lifetime - min_ttl)));
  return in_window;
}

Millis RefreshPolicy::backoff(unsigned failures, double u01) const {
  if (failures == 0) return Millis(0);
  u01 = std::clamp(u01, 0.0, 1.0);
  const double exp = std::min<double>(failures - 1, 40); // 2^40 ms already exceeds any cap
  const double step =
      std::min(static_cast<double>(backoff_initial.count()) * std::pow(2.0, exp), static_cast<double>(backoff_max.count()));
  return Millis(static_cast<Millis::rep>(step / 2 + u01 * step / 2));
}

Millis RefreshPolicy::rate_limit_pause(std::optional<Seconds> retry_after, unsigned strikes, double u01) const {
  if (retry_after && retry_after->count() > 0) return *retry_after;
  return backoff(std::max(1u, strikes), u01);
}

} // namespace cltoken

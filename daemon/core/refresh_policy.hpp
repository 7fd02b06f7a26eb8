#pragma once
// When to refresh and how long to wait after a failure: plain arithmetic, no I/O.
#include "core/clock.hpp"

namespace cltoken {

struct RefreshPolicy {
  double at = 0.75;     ///< fraction of the lifetime after which to refresh
  double jitter = 0.05; ///< +- fraction of the lifetime, spreads daemons apart
  Millis backoff_initial{1000};
  Millis backoff_max{300000};

  /// When a token obtained (request sent) at `obtained` and living `lifetime` should be
  /// refreshed; `u` is a uniform sample in [-1, 1] chosen once per token.
  [[nodiscard]] SteadyTime refresh_at(SteadyTime obtained, Seconds lifetime, double u) const;

  /// Delay before retry number `failures` (1 = after the first failure): exponential,
  /// capped at backoff_max, with "equal jitter" so it is never below half the step.
  /// `u01` is uniform in [0, 1].
  [[nodiscard]] Millis backoff(unsigned failures, double u01) const;
};

} // namespace cltoken

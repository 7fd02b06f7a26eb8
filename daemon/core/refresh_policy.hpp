#pragma once
// When to refresh and how long to wait after a failure: plain arithmetic, no I/O.
#include <optional>

#include "core/clock.hpp"

namespace cltoken {

struct RefreshPolicy {
  double at = 0.75;     ///< fraction of the lifetime after which to refresh
  double jitter = 0.05; ///< +- fraction of the lifetime, spreads daemons apart
  Millis backoff_initial{1000};
  Millis backoff_max{300000};
  /// refresh.min_ttl: the refresh is scheduled before a token has less than this left,
  /// so clients asking with the configured min_ttl do not wait for it. Ignored for tokens
  /// that live less than twice as long (they would refresh in their first half).
  Seconds min_ttl{0};

  /// When a token obtained (request sent) at `obtained` and living `lifetime` should be
  /// refreshed; `u` is a uniform sample in [-1, 1] chosen once per token.
  [[nodiscard]] SteadyTime refresh_at(SteadyTime obtained, Seconds lifetime, double u) const;

  /// Delay before retry number `failures` (1 = after the first failure): exponential,
  /// capped at backoff_max, with "equal jitter" so it is never below half the step.
  /// `u01` is uniform in [0, 1].
  [[nodiscard]] Millis backoff(unsigned failures, double u01) const;

  /// How long every upstream request pauses after a 429: Retry-After when it asks for a
  /// wait (a 0 or a date in the past is no reason to hammer on), else the backoff for the
  /// `strikes`-th 429 in a row.
  [[nodiscard]] Millis rate_limit_pause(std::optional<Seconds> retry_after, unsigned strikes, double u01) const;
};

} // namespace cltoken

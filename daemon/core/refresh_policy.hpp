#pragma once
// When to refresh and how long to wait after a failure: plain arithmetic, no I/O.
#include <optional>

#include "core/clock.hpp"

namespace cltoken {

/// Whether a new token could give a client the `min_ttl` the held one (obtained at
/// `obtained`, living `lifetime`) no longer has: the next token lives about as long as this
/// one did, so it must live longer than min_ttl, and one obtained a moment ago (less than a
/// twentieth of its life, a second at least) would be no better. Credentials and customer
/// sessions decide the same way.
[[nodiscard]] bool new_token_helps(SteadyTime obtained, SteadyClock::duration lifetime, Seconds min_ttl, SteadyTime now);

struct RefreshPolicy {
  double at = 0.75;     ///< fraction of the lifetime after which to refresh
  double jitter = 0.05; ///< +- fraction of the lifetime, spreads daemons apart
  Millis backoff_initial{1000};
  Millis backoff_max{300000};
  /// refresh.min_ttl: the refresh is scheduled before a token has less than this left,
  /// so clients asking with the configured min_ttl do not wait for it. Ignored for tokens
  /// that live less than twice as long (they would refresh in their first half).
  Seconds min_ttl{0};
  /// refresh.reissue_window_s: the auth server hands back the token it already issued
  /// until that token has this long left (Commerce Layer: 900 s), so a refresh before
  /// then gains nothing. 0: every request gets a new token. Customer sessions keep 0:
  /// a refresh-token grant always issues a new token.
  Seconds reissue_window{0};

  /// When a token obtained (request sent) at `obtained` and living `lifetime` should be
  /// refreshed; `u` is a uniform sample in [-1, 1] chosen once per token. With a reissue
  /// window shorter than the lifetime, never before the window opens: the refresh lands
  /// in its first part, spread by the jitter, earlier still if min_ttl asks for it.
  [[nodiscard]] SteadyTime refresh_at(SteadyTime obtained, Seconds lifetime, double u) const;

  /// When the auth server starts issuing a new token in place of one obtained at
  /// `obtained` with `lifetime` left, plus a margin for the whole seconds and latency of
  /// its answer; nullopt when it issues one on every request.
  [[nodiscard]] std::optional<SteadyTime> reissue_from(SteadyTime obtained, Seconds lifetime) const;

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

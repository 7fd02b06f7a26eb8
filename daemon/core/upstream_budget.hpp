#pragma once
// The host's one upstream budget, shared by credentials and customer sessions: the
// sliding-window count (RateBudget), the pause after a 429, and who caused the requests.
// The auth server counts per client IP, so every flow that calls it takes its slots here.
//
// Fairness: each request is charged to the peer (uid) whose action caused it, or to no
// one for scheduled work (refreshes, cold start). When requests queue for the budget, work
// caused by a peer that caused few requests in the last window goes first; scheduled work
// ranks with a peer that caused none, so no one peer can push refreshes of tokens in use
// back by more than its first request.
#include <sys/types.h>

#include <deque>
#include <map>
#include <optional>
#include <string>

#include "core/clock.hpp"
#include "core/rate_budget.hpp"
#include "core/refresh_policy.hpp"
#include "core/upstream_response.hpp"

namespace cltoken {

class UpstreamBudget {
public:
  /// A peer's requests count towards its rank for two windows: a request holds its slot
  /// until a window after its answer, so a record as short as the window would be gone
  /// by the moment the slot it used frees, just when the queue is ordered.
  explicit UpstreamBudget(unsigned per_minute, Millis window = Millis(60000)) : window_(per_minute, window), span_(2 * window) {}

  /// The sliding window itself, for the credential scheduler's plan.
  [[nodiscard]] RateBudget& window() { return window_; }
  [[nodiscard]] unsigned limit() const { return window_.limit(); }
  void set_limit(unsigned per_minute) { window_.set_limit(per_minute); }

  /// Rank of work caused by `peer` (nullopt: scheduled work): the upstream requests it
  /// caused in the last two windows. Lower goes first.
  [[nodiscard]] unsigned rank(std::optional<uid_t> peer, SteadyTime now);
  /// A request went out on behalf of `peer` (none for scheduled work).
  void charge(std::optional<uid_t> peer, SteadyTime now);

  /// For flows that answer at once rather than queue (customer logins, session refreshes):
  /// takes a slot when one is free now, the credential scheduler has nothing queued that
  /// ranks before this peer, and more than `reserve` slots are left. release() when done.
  bool try_take(std::optional<uid_t> peer, SteadyTime now, unsigned reserve = 0);
  void release(SteadyTime now) { window_.finish(now); }
  /// When to come back after try_take() said no.
  [[nodiscard]] SteadyTime next_slot(SteadyTime now) { return window_.next_slot(now); }
  /// Slots free now (0 while paused after a 429).
  [[nodiscard]] unsigned left(SteadyTime now) { return window_.paused_until(now) ? 0 : window_.remaining(now); }

  /// The credential scheduler's queue: the best rank of work waiting for a slot, if any.
  /// try_take() lets no peer of a worse rank pass it.
  void set_queued(std::optional<unsigned> best_rank) { queued_rank_ = best_rank; }

  /// A 429 from the auth server: pauses every request, for Retry-After or a backoff that
  /// grows with each 429 in a row (`u01` uniform in [0,1]). Returns the pause.
  Millis rate_limited(const UpstreamFailure& f, SteadyTime now, const RefreshPolicy& policy, double u01);
  /// An answer that was not a 429: the next one starts the backoff afresh.
  void answered() { strikes_ = 0; }
  [[nodiscard]] std::optional<SteadyTime> paused_until(SteadyTime now) const { return window_.paused_until(now); }
  /// What the last 429 said, for the answers given during its pause.
  [[nodiscard]] const std::string& pause_reason() const { return pause_reason_; }

private:
  void prune(SteadyTime now);

  RateBudget window_;
  Millis span_;
  unsigned strikes_ = 0;
  std::string pause_reason_;
  std::optional<unsigned> queued_rank_;
  std::map<uid_t, std::deque<SteadyTime>> caused_; ///< per peer, send times within span_
};

} // namespace cltoken

#pragma once
// Which due credentials get the upstream budget, and in which order: the scheduler's
// choice as a plain function, so the broker only does I/O and the choice is tested with a
// hand-moved clock. When demand exceeds the budget (cold start with many credentials, an
// invalidation storm) the credential a client is stuck waiting on goes first, then the
// token closest to expiry.
#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include "core/clock.hpp"
#include "core/rate_budget.hpp"

namespace cltoken {

/// One credential whose fetch is due.
struct FetchCandidate {
  std::size_t id = 0;                   ///< the caller's handle, returned in the plan
  bool starving = false;                ///< a client is waiting and no valid token exists
  std::optional<SteadyTime> expires_at; ///< the current token's expiry; none = no token
};

/// Strict weak order: true when `a` should be fetched before `b`. Starving first; then
/// earliest expiry, a missing token counting as already expired.
[[nodiscard]] bool fetch_before(const FetchCandidate& a, const FetchCandidate& b);

struct FetchPlan {
  /// Fetch these now, in this order; each one is already started in the budget (the
  /// caller finishes it when the answer comes).
  std::vector<std::size_t> start;
  /// Due but over budget, in queue order, with the time each one's turn is expected if
  /// nothing new arrives (a later starving credential can still overtake it).
  std::vector<std::pair<std::size_t, SteadyTime>> queued;
};

/// Orders `due` by fetch_before (stable: equal candidates keep their order) and hands
/// out what the budget allows at `now`.
[[nodiscard]] FetchPlan plan_fetches(std::vector<FetchCandidate> due, RateBudget& budget, SteadyTime now);

} // namespace cltoken

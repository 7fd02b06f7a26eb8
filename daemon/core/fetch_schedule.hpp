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
  std::size_t id = 0; ///< the caller's handle, returned in the plan
  /// UpstreamBudget::rank of whoever made it due (0: scheduled work, or a peer that
  /// caused no request in the last window); lower goes first.
  unsigned rank = 0;
  bool starving = false;                ///< a client is waiting and no valid token exists
  std::optional<SteadyTime> expires_at; ///< the current token's expiry; none = no token
};

/// Strict weak order: true when `a` should be fetched before `b`. Lower rank first (a
/// peer that caused many requests waits behind one that caused none); then starving;
/// then earliest expiry, a missing token counting as already expired.
[[nodiscard]] bool fetch_before(const FetchCandidate& a, const FetchCandidate& b);

/// At most this many token requests in flight at once. The budget alone would let a cold
/// start with a high `max_requests_per_minute` open hundreds of TLS connections together:
/// nothing is gained upstream (the server answers them one by one anyway) and the daemon's
/// memory would keep the high-water mark of that burst (docs/performance.md).
inline constexpr std::size_t max_fetches_in_flight = 16;

struct FetchPlan {
  /// Fetch these now, in this order; each one is already started in the budget (the
  /// caller finishes it when the answer comes).
  std::vector<std::size_t> start;
  /// Due but over budget, in queue order, with the time each one's turn is expected if
  /// nothing new arrives (a later starving credential can still overtake it).
  std::vector<std::pair<std::size_t, SteadyTime>> queued;
  /// Due and within budget, but every connection slot is taken: these start when a fetch
  /// in flight ends (the caller re-plans then), in this order.
  std::vector<std::size_t> held;
};

/// Orders `due` by fetch_before (stable: equal candidates keep their order) and hands
/// out what the budget allows at `now`, starting at most `free_slots` of them.
[[nodiscard]] FetchPlan plan_fetches(std::vector<FetchCandidate> due, RateBudget& budget, SteadyTime now,
                                     std::size_t free_slots = max_fetches_in_flight);

} // namespace cltoken

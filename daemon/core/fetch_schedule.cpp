#include "core/fetch_schedule.hpp"

#include <algorithm>

namespace cltoken {

bool fetch_before(const FetchCandidate& a, const FetchCandidate& b) {
  if (a.rank != b.rank) return a.rank < b.rank;
  if (a.starving != b.starving) return a.starving;
  const SteadyTime ea = a.expires_at.value_or(SteadyTime::min());
  const SteadyTime eb = b.expires_at.value_or(SteadyTime::min());
  return ea < eb;
}

FetchPlan plan_fetches(std::vector<FetchCandidate> due, RateBudget& budget, SteadyTime now, std::size_t free_slots) {
  std::stable_sort(due.begin(), due.end(), fetch_before);
  FetchPlan plan;
  std::size_t i = 0;
  for (; i < due.size() && plan.start.size() < free_slots && budget.available(now); ++i) {
    budget.start(now);
    plan.start.push_back(due[i].id);
  }
  if (i < due.size() && budget.available(now)) {
    // Stopped by the slots, not the budget: no time to wait for, only a fetch to end.
    for (; i < due.size(); ++i) plan.held.push_back(due[i].id);
  } else if (i < due.size()) {
    const auto slots = budget.upcoming(now, due.size() - i);
    for (std::size_t k = 0; i < due.size(); ++i, ++k)
      plan.queued.emplace_back(due[i].id, k < slots.size() ? slots[k] : SteadyTime::max());
  }
  return plan;
}

} // namespace cltoken

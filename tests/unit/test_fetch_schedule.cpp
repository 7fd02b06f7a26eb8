#include <catch2/catch.hpp>

#include "core/fetch_schedule.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

namespace {
const SteadyTime t0 = SteadyTime{} + std::chrono::hours(1000);

FetchCandidate candidate(std::size_t id, bool starving, std::optional<SteadyTime> expires_at) {
  FetchCandidate c;
  c.id = id;
  c.starving = starving;
  c.expires_at = expires_at;
  return c;
}
} // namespace

TEST_CASE("a starving client goes first, then the token closest to expiry, no token counting as expired") {
  std::vector<FetchCandidate> due{
      candidate(0, false, t0 + 600s),    // refresh due, 10 min left
      candidate(1, false, t0 + 30s),     // 30 s left
      candidate(2, true, std::nullopt),  // a client is waiting, nothing to give it
      candidate(3, false, std::nullopt), // cold, nobody asked yet
      candidate(4, true, std::nullopt),
  };
  RateBudget budget(25);
  FetchPlan plan = plan_fetches(due, budget, t0);
  CHECK(plan.start == std::vector<std::size_t>{2, 4, 3, 1, 0});
  CHECK(plan.queued.empty());
  CHECK(budget.used(t0) == 5);
}

TEST_CASE("only what the budget allows starts; the rest queue with the time their turn comes") {
  RateBudget budget(3);
  budget.start(t0 - 50s);
  budget.finish(t0 - 50s); // leaves the window at t0 + 10 s
  std::vector<FetchCandidate> due;
  for (std::size_t i = 0; i < 6; ++i) due.push_back(candidate(i, false, t0 + Seconds(100 - static_cast<long>(i))));
  FetchPlan plan = plan_fetches(due, budget, t0);
  // Closest to expiry first: 5, 4 fit now.
  CHECK(plan.start == std::vector<std::size_t>{5, 4});
  REQUIRE(plan.queued.size() == 4);
  CHECK(plan.queued[0] == std::pair<std::size_t, SteadyTime>{3, t0 + 10s});
  CHECK(plan.queued[1] == std::pair<std::size_t, SteadyTime>{2, t0 + 60s});
  CHECK(plan.queued[2] == std::pair<std::size_t, SteadyTime>{1, t0 + 60s});
  CHECK(plan.queued[3] == std::pair<std::size_t, SteadyTime>{0, t0 + 70s});
  CHECK(budget.used(t0) == 3); // planning the queue started nothing more
}

TEST_CASE("during a 429 pause nothing starts, and every turn is after the pause") {
  RateBudget budget(25);
  budget.pause_until(t0 + 4s);
  FetchPlan plan = plan_fetches({candidate(0, true, std::nullopt), candidate(1, false, t0 + 1s)}, budget, t0);
  CHECK(plan.start.empty());
  REQUIRE(plan.queued.size() == 2);
  CHECK(plan.queued[0].first == 0);
  for (const auto& [id, at] : plan.queued) CHECK(at == t0 + 4s);
}

TEST_CASE("equal candidates keep their order, so the choice is deterministic") {
  RateBudget budget(2);
  FetchPlan plan = plan_fetches(
      {candidate(7, false, std::nullopt), candidate(3, false, std::nullopt), candidate(9, false, std::nullopt)}, budget, t0);
  CHECK(plan.start == std::vector<std::size_t>{7, 3});
  REQUIRE(plan.queued.size() == 1);
  CHECK(plan.queued[0].first == 9);
}

TEST_CASE("upcoming slots follow the sliding window and a pause") {
  RateBudget budget(2);
  budget.start(t0 - 30s);
  budget.finish(t0 - 30s);
  auto slots = budget.upcoming(t0, 4);
  CHECK(slots == std::vector<SteadyTime>{t0, t0 + 30s, t0 + 60s, t0 + 90s});
  budget.pause_until(t0 + 45s);
  slots = budget.upcoming(t0, 3);
  CHECK(slots == std::vector<SteadyTime>{t0 + 45s, t0 + 45s, t0 + 105s});
  CHECK(budget.used(t0) == 1);
}

TEST_CASE("queued turns assume the requests in flight are answered now") {
  RateBudget budget(2);
  FetchPlan first = plan_fetches({candidate(0, false, std::nullopt), candidate(1, false, std::nullopt)}, budget, t0);
  CHECK(first.start.size() == 2);
  FetchPlan second = plan_fetches({candidate(2, true, std::nullopt)}, budget, t0 + 1s);
  CHECK(second.start.empty());
  REQUIRE(second.queued.size() == 1);
  CHECK(second.queued[0].second == t0 + 61s);
  budget.finish(t0 + 2s);
  budget.finish(t0 + 3s);
  FetchPlan third = plan_fetches({candidate(2, true, std::nullopt)}, budget, t0 + 4s);
  REQUIRE(third.queued.size() == 1);
  CHECK(third.queued[0].second == t0 + 62s); // a window after the first answer
}

TEST_CASE("no more than the free connection slots start; the rest are held, not queued for a time") {
  RateBudget budget(100);
  std::vector<FetchCandidate> due;
  for (std::size_t i = 0; i < 5; ++i) due.push_back(candidate(i, i == 3, std::nullopt));
  FetchPlan plan = plan_fetches(due, budget, t0, 2);
  CHECK(plan.start == std::vector<std::size_t>{3, 0}); // the starving one still goes first
  CHECK(plan.held == std::vector<std::size_t>{1, 2, 4});
  CHECK(plan.queued.empty());
  CHECK(budget.used(t0) == 2); // held ones take no budget until they start
  FetchPlan none_free = plan_fetches({candidate(9, true, std::nullopt)}, budget, t0, 0);
  CHECK(none_free.start.empty());
  CHECK(none_free.held == std::vector<std::size_t>{9});
}

TEST_CASE("when the budget runs out before the slots, the rest queue for their turn as before") {
  RateBudget budget(2);
  FetchPlan plan = plan_fetches(
      {candidate(0, false, std::nullopt), candidate(1, false, std::nullopt), candidate(2, false, std::nullopt)}, budget, t0, 2);
  CHECK(plan.start.size() == 2);
  CHECK(plan.held.empty());
  REQUIRE(plan.queued.size() == 1);
  CHECK(plan.queued[0].first == 2);
}

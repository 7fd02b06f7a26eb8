#include <catch2/catch.hpp>

#include "core/rate_budget.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

TEST_CASE("the budget allows N requests in any sliding 60 s window") {
  RateBudget b(3);
  SteadyTime t{};
  for (int i = 0; i < 3; ++i) {
    REQUIRE(b.available(t + i * 1s));
    b.record(t + i * 1s);
  }
  CHECK_FALSE(b.available(t + 10s));
  CHECK(b.remaining(t + 10s) == 0);
  CHECK(b.next_slot(t + 10s) == t + 60s); // the first request leaves the window
  CHECK_FALSE(b.available(t + 59s));
  CHECK(b.available(t + 60s));
  b.record(t + 60s);
  CHECK(b.next_slot(t + 60s) == t + 61s);
  CHECK(b.used(t + 61500ms) == 2); // the request at 1 s has left; the one at 2 s has not
  CHECK(b.used(t + 62s) == 1);
}

TEST_CASE("a 429 pause stops everything until it ends, and is never shortened") {
  RateBudget b(25);
  SteadyTime t{};
  b.pause_until(t + 4s);
  CHECK_FALSE(b.available(t + 1s));
  CHECK(b.next_slot(t + 1s) == t + 4s);
  b.pause_until(t + 2s);
  CHECK(b.paused_until(t + 3s) == t + 4s);
  CHECK(b.available(t + 4s));
  CHECK_FALSE(b.paused_until(t + 4s));
}

TEST_CASE("whatever the demand, no window ever holds more than the limit") {
  RateBudget b(25);
  SteadyTime t{};
  std::vector<SteadyTime> sent;
  for (int ms = 0; ms < 300000; ms += 137) {
    SteadyTime now = t + std::chrono::milliseconds(ms);
    while (b.available(now)) {
      b.record(now);
      sent.push_back(now);
    }
  }
  for (std::size_t i = 0; i < sent.size(); ++i) {
    std::size_t in_window = 0;
    for (std::size_t j = i; j < sent.size() && sent[j] < sent[i] + 60s; ++j) ++in_window;
    REQUIRE(in_window <= 25);
  }
  CHECK(sent.size() >= 125); // and the budget is actually used
}

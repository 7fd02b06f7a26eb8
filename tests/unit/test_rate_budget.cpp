#include <catch2/catch.hpp>

#include "core/rate_budget.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

namespace {
/// A request answered at once.
void instant(RateBudget& b, SteadyTime t) {
  b.start(t);
  b.finish(t);
}
} // namespace

TEST_CASE("the budget allows N requests in any sliding 60 s window") {
  RateBudget b(3);
  SteadyTime t{};
  for (int i = 0; i < 3; ++i) {
    REQUIRE(b.available(t + i * 1s));
    instant(b, t + i * 1s);
  }
  CHECK_FALSE(b.available(t + 10s));
  CHECK(b.remaining(t + 10s) == 0);
  CHECK(b.next_slot(t + 10s) == t + 60s); // the first request leaves the window
  CHECK_FALSE(b.available(t + 59s));
  CHECK(b.available(t + 60s));
  instant(b, t + 60s);
  CHECK(b.next_slot(t + 60s) == t + 61s);
  CHECK(b.used(t + 61500ms) == 2); // the request at 1 s has left; the one at 2 s has not
  CHECK(b.used(t + 62s) == 1);
}

TEST_CASE("a request holds its slot while in flight and for a window after its answer") {
  // The server counts a request when it arrives. A slow first request (new TLS connection)
  // and a fast one a window later must not arrive less than a window apart.
  RateBudget b(1);
  SteadyTime t{};
  b.start(t);
  CHECK(b.used(t + 120s) == 1);                                               // in flight, however long
  CHECK(b.next_slot(t + 1s) == SteadyTime::max());                            // only its answer can tell
  CHECK(b.upcoming(t + 1s, 2) == std::vector<SteadyTime>{t + 61s, t + 121s}); // as if answered now
  b.finish(t + 5s);
  CHECK_FALSE(b.available(t + 60s));
  CHECK(b.next_slot(t + 60s) == t + 65s);
  CHECK(b.available(t + 65s));
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

TEST_CASE("a lower limit after a reload counts the requests already made") {
  RateBudget b(5);
  SteadyTime t{};
  for (int i = 0; i < 5; ++i) instant(b, t + i * 1s);
  b.set_limit(2);
  CHECK_FALSE(b.available(t + 10s));
  CHECK(b.next_slot(t + 10s) == t + 63s); // three must leave: those at 0, 1 and 2 s
}

TEST_CASE("whatever the demand and the latency, no window ever holds more than the limit") {
  RateBudget b(25);
  SteadyTime t{};
  std::vector<std::pair<SteadyTime, SteadyTime>> sent; // (sent, answered)
  std::vector<SteadyTime> pending;
  for (int ms = 0; ms < 300000; ms += 137) {
    SteadyTime now = t + std::chrono::milliseconds(ms);
    // Answers take 0.1 to 3 s.
    std::erase_if(pending, [&](SteadyTime answer_at) {
      if (answer_at > now) return false;
      b.finish(answer_at);
      return true;
    });
    while (b.available(now)) {
      b.start(now);
      const SteadyTime answer = now + std::chrono::milliseconds(100 + (ms * 7) % 2900);
      pending.push_back(answer);
      sent.emplace_back(now, answer);
    }
  }
  // Arrival at the server is anywhere between sending and the answer: count the worst case.
  for (std::size_t i = 0; i < sent.size(); ++i) {
    std::size_t in_window = 0;
    for (std::size_t j = i; j < sent.size() && sent[j].first < sent[i].second + 60s; ++j) ++in_window;
    REQUIRE(in_window <= 25);
  }
  CHECK(sent.size() >= 110); // and the budget is actually used
}

#include <catch2/catch.hpp>

#include "core/refresh_policy.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

TEST_CASE("refresh happens at `at` of the lifetime, moved by at most `jitter`") {
  RefreshPolicy p{0.75, 0.05, 1000ms, 300000ms};
  const SteadyTime t0{};
  CHECK(p.refresh_at(t0, 7200s, 0.0) == t0 + 5400s);
  CHECK(p.refresh_at(t0, 7200s, 1.0) == t0 + 5760s);  // 0.80
  CHECK(p.refresh_at(t0, 7200s, -1.0) == t0 + 5040s); // 0.70
  CHECK(p.refresh_at(t0, 7200s, 5.0) == t0 + 5760s);  // clamped sample
}

TEST_CASE("backoff doubles, is capped, and never drops below half a step") {
  RefreshPolicy p{0.75, 0.05, 1000ms, 300000ms};
  CHECK(p.backoff(0, 0.5) == 0ms);
  CHECK(p.backoff(1, 1.0) == 1000ms);
  CHECK(p.backoff(1, 0.0) == 500ms);
  CHECK(p.backoff(2, 1.0) == 2000ms);
  CHECK(p.backoff(3, 1.0) == 4000ms);
  for (unsigned n = 1; n < 100; ++n) {
    for (double u : {0.0, 0.3, 1.0}) {
      auto d = p.backoff(n, u);
      CHECK(d <= 300000ms);
      CHECK(d >= std::min<Millis>(Millis(1000LL << std::min(n - 1, 20u)), 300000ms) / 2);
    }
  }
  CHECK(p.backoff(30, 1.0) == 300000ms);
}

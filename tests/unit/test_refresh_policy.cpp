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

TEST_CASE("the configured min_ttl moves the refresh earlier when the token lives long enough") {
  RefreshPolicy p{0.9, 0.0, 1000ms, 300000ms, 600s};
  const SteadyTime t0{};
  CHECK(p.refresh_at(t0, 7200s, 0.0) == t0 + 6480s); // 0.9: 720 s left, more than min_ttl
  p.at = 0.95;
  CHECK(p.refresh_at(t0, 7200s, 0.0) == t0 + 6600s); // 360 s left would be under min_ttl: 600 s before expiry
  CHECK(p.refresh_at(t0, 1000s, 0.0) == t0 + 950s);  // lives less than 2 x min_ttl: `at` alone
  p.min_ttl = 0s;
  CHECK(p.refresh_at(t0, 7200s, 0.0) == t0 + 6840s);
}

TEST_CASE("a 429 pauses for Retry-After when it asks for a wait, else for a growing, capped backoff") {
  RefreshPolicy p{0.75, 0.05, 1000ms, 8000ms};
  CHECK(p.rate_limit_pause(4s, 1, 0.5) == 4000ms);
  CHECK(p.rate_limit_pause(120s, 3, 0.5) == 120000ms); // honoured even beyond backoff_max
  CHECK(p.rate_limit_pause(0s, 1, 1.0) == 1000ms);     // "Retry-After: 0" is no reason to hammer on
  CHECK(p.rate_limit_pause(std::nullopt, 0, 1.0) == 1000ms);
  CHECK(p.rate_limit_pause(std::nullopt, 2, 1.0) == 2000ms);
  CHECK(p.rate_limit_pause(std::nullopt, 9, 1.0) == 8000ms);
  for (unsigned n = 1; n < 50; ++n)
    for (double u : {0.0, 0.25, 0.5, 0.99}) {
      const Millis d = p.rate_limit_pause(std::nullopt, n, u);
      CHECK(d >= 500ms);
      CHECK(d <= 8000ms);
    }
}

// The host's upstream budget is shared fairly: work a peer caused waits behind work of a
// peer that caused less, and scheduled refreshes of tokens in use go before any one
// peer's on-demand requests. On the UpstreamBudget alone, then on the scheduler in
// virtual time with a budget small enough to queue.
#include <catch2/catch.hpp>

#include "core/upstream_budget.hpp"
#include "virtual_driver.hpp"

using namespace cltoken;
using namespace cltoken::test;
using namespace std::chrono_literals;

TEST_CASE("UpstreamBudget: a peer's rank is the requests it caused in the last two windows") {
  FakeClock clock;
  UpstreamBudget b(10);
  CHECK(b.rank(std::nullopt, clock.now()) == 0);
  CHECK(b.rank(1000, clock.now()) == 0);
  b.charge(1000, clock.now());
  b.charge(1000, clock.now());
  b.charge(std::nullopt, clock.now()); // scheduled work is no one's
  CHECK(b.rank(1000, clock.now()) == 2);
  CHECK(b.rank(2000, clock.now()) == 0);
  CHECK(b.rank(std::nullopt, clock.now()) == 0);
  clock.advance(60s); // their slots free now: they still rank the peer's queued work
  b.charge(1000, clock.now());
  CHECK(b.rank(1000, clock.now()) == 3);
  clock.advance(60s); // the first two are forgotten
  CHECK(b.rank(1000, clock.now()) == 1);
  clock.advance(60s);
  CHECK(b.rank(1000, clock.now()) == 0);
}

TEST_CASE("UpstreamBudget: a flow that cannot queue does not pass queued work of a better rank") {
  FakeClock clock;
  UpstreamBudget b(10);
  b.charge(1000, clock.now());
  b.charge(1000, clock.now());
  b.set_queued(1u);                             // the credential scheduler has work waiting of rank 1
  CHECK_FALSE(b.try_take(1000, clock.now()));   // rank 2: behind it
  CHECK(b.try_take(std::nullopt, clock.now())); // scheduled work ranks 0: it goes first
  b.release(clock.now());
  CHECK(b.try_take(2000, clock.now())); // a peer that caused nothing goes first too
  b.release(clock.now());
  b.set_queued(std::nullopt);
  CHECK(b.try_take(1000, clock.now()));
  b.release(clock.now());
  // And the window's limit and reserve hold whoever asks.
  UpstreamBudget small(2);
  CHECK(small.try_take(2000, clock.now(), 1));
  CHECK_FALSE(small.try_take(2000, clock.now(), 1)); // the last slot is kept in reserve
  CHECK(small.try_take(2000, clock.now()));
  CHECK_FALSE(small.try_take(2000, clock.now()));
  CHECK(small.next_slot(clock.now()) == SteadyTime::max()); // only an answer can free one
  small.release(clock.now());
  CHECK(small.next_slot(clock.now()) == clock.now() + 60s);
}

TEST_CASE("UpstreamBudget: a 429 pauses everyone, Retry-After or a backoff growing with each 429 in a row") {
  FakeClock clock;
  UpstreamBudget b(10);
  const RefreshPolicy p{0.75, 0.0, 1000ms, 8000ms};
  UpstreamFailure f;
  f.kind = FailureKind::rate_limited;
  f.message = "auth server rate limit reached (429)";
  CHECK(b.rate_limited(f, clock.now(), p, 1.0) == 1000ms);
  CHECK(b.rate_limited(f, clock.now(), p, 1.0) == 2000ms);
  CHECK(b.paused_until(clock.now()) == clock.now() + 2000ms);
  CHECK(b.left(clock.now()) == 0);
  CHECK_FALSE(b.try_take(std::nullopt, clock.now()));
  CHECK(b.pause_reason() == f.message);
  b.answered();
  f.retry_after = 30s;
  CHECK(b.rate_limited(f, clock.now(), p, 1.0) == 30000ms);
  f.retry_after.reset();
  CHECK(b.rate_limited(f, clock.now(), p, 1.0) == 2000ms); // the strikes restarted after the answer
}

namespace {

/// c0 and c1 live an hour; c2 lives 400 s, so its scheduled refresh comes at 300 s.
struct Upstream {
  int issued = 0;
  UpstreamResult operator()(std::size_t cred, SteadyTime) {
    return make_grant("tok-" + std::to_string(cred) + "-" + std::to_string(++issued), cred == 2 ? 400s : 3600s);
  }
};

constexpr uid_t attacker = 1000;
constexpr uid_t victim = 2000;

/// The order in which c0..c2 were fetched after `after`.
std::vector<std::size_t> order_after(const VirtualDriver& d, SteadyTime after) {
  std::vector<std::size_t> out;
  for (const auto& s : d.sent())
    if (s.at > after) out.push_back(s.cred);
  return out;
}

} // namespace

TEST_CASE("a peer that caused many upstream requests waits behind one that caused none") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  // Two requests a minute: anything beyond them queues.
  VirtualDriver d(clock, 3, 2, RefreshPolicy{0.75, 0.0, 1000ms, 8000ms}, 100ms, Upstream{});
  d.run_until(t0 + 200s); // cold start: c0, c1 at once, c2 a window later
  REQUIRE(d.sent().size() == 3);
  auto current = [&](std::size_t c) { return std::string(d.state(c).token()->access_token.reveal()); };

  std::vector<Answer> victim_answers;
  // The attacker reports c0's and c1's tokens invalid: both go out (the budget is free)...
  d.invalidate(
      0, current(0), 1000ms, [](const Answer&) {}, attacker);
  d.invalidate(
      1, current(1), 1000ms, [](const Answer&) {}, attacker);
  d.run_until(t0 + 201s);
  REQUIRE(d.sent().size() == 5);
  // ...and again, now over the budget: queued, with its client waiting, and first by
  // every other rule (both have a client waiting and no token; c0 comes first by name).
  d.invalidate(
      0, current(0), 90000ms, [](const Answer&) {}, attacker);
  d.run_until(t0 + 202s);
  // The victim reports c2's token after it; it caused no request in the window.
  d.invalidate(
      2, current(2), 90000ms, [&](const Answer& a) { victim_answers.push_back(a); }, victim);
  d.run_until(t0 + 400s);

  const auto order = order_after(d, t0 + 201s);
  REQUIRE(order.size() >= 2);
  CHECK(order[0] == 2); // the victim's, though asked for after the attacker's
  CHECK(order[1] == 0);
  REQUIRE(victim_answers.size() == 1);
  CHECK(victim_answers[0].ok);
  CHECK(d.max_in_window() <= 2);
}

TEST_CASE("a scheduled refresh of a token in use goes before one peer's on-demand requests") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  VirtualDriver d(clock, 3, 2, RefreshPolicy{0.75, 0.0, 1000ms, 8000ms}, 100ms, Upstream{});
  d.run_until(t0 + 200s);
  REQUIRE(d.sent().size() == 3);
  const SteadyTime c2_refresh = d.state(2).token()->refresh_at; // 60.1 s + 300 s
  REQUIRE(c2_refresh > t0 + 356s);
  auto current = [&](std::size_t c) { return std::string(d.state(c).token()->access_token.reveal()); };

  // Just before c2's refresh, the attacker spends the budget and queues more work (its
  // clients waiting, with no token: starving).
  d.run_until(t0 + 355s);
  d.invalidate(
      0, current(0), 1000ms, [](const Answer&) {}, attacker);
  d.invalidate(
      1, current(1), 1000ms, [](const Answer&) {}, attacker);
  d.run_until(t0 + 356s);
  d.invalidate(
      0, current(0), 90000ms, [](const Answer&) {}, attacker);
  d.run_until(t0 + 500s);

  const auto order = order_after(d, t0 + 355500ms);
  REQUIRE(order.size() >= 2);
  CHECK(order[0] == 2); // the refresh of the token in use
  CHECK(order[1] == 0);
  CHECK(d.state(2).has_valid(clock.now())); // its first token died at 459 s: refreshed in time
}

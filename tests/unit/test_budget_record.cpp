// The upstream budget's record across a restart: written as the budget changes, read back
// by the next life of the daemon, and never a way to send more than the budget allows.
#include <catch2/catch.hpp>

#include "core/budget_record.hpp"
#include "core/rate_budget.hpp"
#include "fake_clock.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

TEST_CASE("a budget record reads back as written") {
  BudgetRecord r;
  const WallTime t0{std::chrono::milliseconds(1795000000123)};
  r.answered = {t0, t0 + 1500ms};
  r.in_flight = {t0 + 2s};
  r.paused_until = t0 + 30s;
  const std::string text = render_budget_record(r);
  CHECK(text == "cl-tokend upstream budget 1\nanswered 1795000000123\nanswered 1795000001623\nin_flight 1795000002123\n"
                "paused_until 1795000030123\n");
  auto back = parse_budget_record(text);
  REQUIRE(back.record);
  CHECK(back.record->answered == r.answered);
  CHECK(back.record->in_flight == r.in_flight);
  CHECK(back.record->paused_until == r.paused_until);
  CHECK(parse_budget_record("cl-tokend upstream budget 1\n").record->answered.empty());
}

TEST_CASE("a file that is not a budget record is refused whole, with the reason") {
  const std::string head = "cl-tokend upstream budget 1\n";
  CHECK(parse_budget_record("").error == "not an upstream budget record");
  CHECK(parse_budget_record("cl-tokend upstream budget 2\n").error == "not an upstream budget record");
  CHECK(parse_budget_record(head + "answered 1795000000123").error == "line 2 is cut short");
  CHECK(parse_budget_record(head + "answered soon\n").error == "line 2 is not \"WHAT MILLISECONDS\"");
  CHECK(parse_budget_record(head + "answered 12\n").error == "line 2 is not \"WHAT MILLISECONDS\"");
  CHECK(parse_budget_record(head + "answered 1795000000123 \n").error == "line 2 is not \"WHAT MILLISECONDS\"");
  CHECK(parse_budget_record(head + "answered\n").error == "line 2 is not \"WHAT MILLISECONDS\"");
  CHECK(parse_budget_record(head + "sent 1795000000123\n").error == "line 2 is not an entry of the record");
  CHECK(parse_budget_record(head + "paused_until 1795000000123\npaused_until 1795000000123\n").error ==
        "line 3 is not an entry of the record");
  std::string many = head;
  for (int i = 0; i < 11; ++i) many += "answered 1795000000123\n";
  CHECK(parse_budget_record(many, 10).error == "more than 10 entries");
  CHECK_FALSE(parse_budget_record(many, 10).record);
}

TEST_CASE("every change of the budget is a moment to write; an estimate is not") {
  test::FakeClock clock;
  RateBudget b(3);
  int changes = 0;
  b.on_change([&] { ++changes; });
  b.start(clock.now());
  CHECK(changes == 1);
  b.finish(clock.now());
  CHECK(changes == 2);
  b.pause_until(clock.now() + 5s);
  CHECK(changes == 3);
  (void)b.upcoming(clock.now(), 10);
  (void)b.next_slot(clock.now());
  CHECK(changes == 3);
}

TEST_CASE("a restarted daemon spends only what its last life left of the window") {
  test::FakeClock clock;
  RateBudget before(3);
  before.start(clock.now());
  before.finish(clock.now() + 200ms);
  clock.advance(10s);
  before.start(clock.now());
  before.finish(clock.now());
  clock.advance(5s);
  before.start(clock.now()); // in flight when the daemon dies
  const SteadyTime died = clock.now();
  const std::string text = render_budget_record(before.record(clock.now(), clock.wall_now()));

  clock.advance(2s); // systemd restarts it
  RateBudget after(3);
  REQUIRE(after.available(clock.now()));
  const auto parsed = parse_budget_record(text);
  REQUIRE(parsed.record);
  CHECK(after.restore(*parsed.record, clock.now(), clock.wall_now(), 10000ms, 15min) == 3);
  CHECK_FALSE(after.available(clock.now()));
  CHECK(after.used(clock.now()) == 3);
  // The first slot frees a window after its answer, as it would have in the last life.
  CHECK(after.next_slot(clock.now()) == died - 15s + 200ms + 60s);
  // The request in flight counts as answered at its deadline or at the restart, whichever
  // came first: here the restart, 2 s after it was sent.
  clock.advance(60s - 15s + 200ms - 2s);
  CHECK(after.used(clock.now()) == 2);
  clock.advance(60s);
  CHECK(after.used(clock.now()) == 0);
}

TEST_CASE("a record made wrong by the wall clock holds slots, never frees more") {
  test::FakeClock clock;
  BudgetRecord r;
  // Written "in the future" (the clock was set back since): held a whole window from now.
  r.answered = {clock.wall_now() + 1h};
  // Older than the window: gone.
  r.answered.push_back(clock.wall_now() - 61s);
  // A pause that would last a day: held to the cap.
  r.paused_until = clock.wall_now() + 24h;
  RateBudget b(5);
  CHECK(b.restore(r, clock.now(), clock.wall_now(), 10000ms, 15min) == 1);
  CHECK(b.used(clock.now()) == 1);
  CHECK(b.paused_until(clock.now()) == clock.now() + 15min);
  clock.advance(60s);
  CHECK(b.used(clock.now()) == 0);
  // A pause that ended is no pause.
  RateBudget c(5);
  r.paused_until = clock.wall_now() - 1s;
  c.restore(r, clock.now(), clock.wall_now(), 10000ms, 15min);
  CHECK_FALSE(c.paused_until(clock.now()));
}

TEST_CASE("a 429 pause survives the restart") {
  test::FakeClock clock;
  RateBudget before(5);
  before.pause_until(clock.now() + 40s);
  const auto r = before.record(clock.now(), clock.wall_now());
  clock.advance(3s);
  RateBudget after(5);
  after.restore(r, clock.now(), clock.wall_now(), 10000ms, 15min);
  REQUIRE(after.paused_until(clock.now()));
  CHECK(*after.paused_until(clock.now()) == clock.now() + 37s);
  CHECK_FALSE(after.available(clock.now()));
}

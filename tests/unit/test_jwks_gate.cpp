#include <catch2/catch.hpp>

#include "core/jwks_gate.hpp"
#include "fake_clock.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

TEST_CASE("key-set requests: the first at once, then none closer than the interval", "[jwt]") {
  test::FakeClock clock;
  JwksGate gate(30s);
  CHECK(gate.may_fetch(clock.now()));
  gate.started(clock.now());
  const SteadyTime first = clock.now();
  clock.advance(29s);
  CHECK_FALSE(gate.may_fetch(clock.now()));
  CHECK(gate.next_fetch(clock.now()) == first + 30s);
  clock.advance(1s);
  CHECK(gate.may_fetch(clock.now()));
  CHECK(gate.next_fetch(clock.now()) == clock.now());
}

TEST_CASE("a flood of unknown kids costs one key-set request per interval", "[jwt]") {
  test::FakeClock clock;
  JwksGate gate(30s);
  int requests = 0;
  for (int i = 0; i < 10 * 60 * 100; ++i) { // ten minutes of 100 tokens a second
    if (gate.may_fetch(clock.now())) {
      gate.started(clock.now());
      ++requests;
    }
    clock.advance(10ms);
  }
  CHECK(requests == 20);
}

TEST_CASE("a new auth server's keys are wanted at once", "[jwt]") {
  test::FakeClock clock;
  JwksGate gate(30s);
  gate.started(clock.now());
  gate.reset();
  CHECK(gate.may_fetch(clock.now()));
  gate.started(clock.now());
  gate.set_min_interval(5s);
  clock.advance(5s);
  CHECK(gate.may_fetch(clock.now()));
}

TEST_CASE("a key set older than max_age is stale until fetched again; a failed fetch waits for the interval", "[jwt]") {
  test::FakeClock clock;
  JwksGate gate(30s, 300s);
  CHECK_FALSE(gate.stale(clock.now())); // nothing in hand yet: an unknown kid fetches, not age
  gate.started(clock.now());
  gate.obtained(clock.now());
  clock.advance(299s);
  CHECK_FALSE(gate.stale(clock.now()));
  clock.advance(1s);
  CHECK(gate.stale(clock.now()));
  REQUIRE(gate.may_fetch(clock.now()));
  // The request failed: the set stays stale, and the next try waits for the interval.
  gate.started(clock.now());
  CHECK(gate.stale(clock.now()));
  CHECK_FALSE(gate.may_fetch(clock.now() + 29s));
  clock.advance(30s);
  gate.started(clock.now());
  gate.obtained(clock.now());
  CHECK_FALSE(gate.stale(clock.now()));
  // A set kept in the store counts its age from its original fetch.
  gate.obtained(clock.now() - 250s);
  CHECK(gate.stale(clock.now() + 50s));
  CHECK_FALSE(gate.stale(clock.now() + 49s));
  gate.set_max_age(3600s);
  CHECK_FALSE(gate.stale(clock.now() + 50s));
  gate.reset();
  CHECK_FALSE(gate.stale(clock.now() + 100h));
}

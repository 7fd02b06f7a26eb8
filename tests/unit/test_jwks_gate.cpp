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

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/idle_connections.hpp"
#include "fake_clock.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

namespace {
/// Runs what the registry handed out, recording which connections were closed.
void close_all(const std::vector<IdleConnections::Close>& closers) {
  for (const auto& c : closers) c();
}
} // namespace

TEST_CASE("an idle connection is closed once it has waited idle_timeout, not before") {
  test::FakeClock clock;
  IdleConnections idle;
  std::vector<std::string> closed;
  idle.add(clock.now(), false, [&] { closed.push_back("a"); });
  clock.advance(400ms);
  idle.add(clock.now(), false, [&] { closed.push_back("b"); });
  CHECK(idle.next_expiry(1000ms) == clock.now() + 600ms); // a's, the oldest
  clock.advance(599ms);
  close_all(idle.take_expired(clock.now(), 1000ms));
  CHECK(closed.empty());
  clock.advance(1ms);
  close_all(idle.take_expired(clock.now(), 1000ms));
  CHECK(closed == std::vector<std::string>{"a"});
  CHECK(idle.next_expiry(1000ms) == clock.now() + 400ms); // now b's
  clock.advance(400ms);
  close_all(idle.take_expired(clock.now(), 1000ms));
  CHECK(closed == std::vector<std::string>{"a", "b"});
  CHECK(idle.empty());
  CHECK_FALSE(idle.next_expiry(1000ms).has_value());
}

TEST_CASE("a connection that stopped waiting is not closed by the idle timer") {
  test::FakeClock clock;
  IdleConnections idle;
  int closed = 0;
  const auto id = idle.add(clock.now(), false, [&] { ++closed; });
  idle.add(clock.now(), false, [&] { closed += 10; });
  idle.remove(id); // its request arrived
  idle.remove(id); // twice is harmless
  clock.advance(5s);
  close_all(idle.take_expired(clock.now(), 1000ms));
  CHECK(closed == 10);
}

TEST_CASE("a shorter idle_timeout after a reload applies to connections already waiting") {
  test::FakeClock clock;
  IdleConnections idle;
  int closed = 0;
  idle.add(clock.now(), false, [&] { ++closed; });
  clock.advance(2s);
  close_all(idle.take_expired(clock.now(), 30000ms));
  CHECK(closed == 0);
  close_all(idle.take_expired(clock.now(), 1000ms));
  CHECK(closed == 1);
}

TEST_CASE("a stop closes connections that served a request, and leaves new ones to their first request") {
  test::FakeClock clock;
  IdleConnections idle;
  std::vector<std::string> closed;
  idle.add(clock.now(), true, [&] { closed.push_back("new"); });
  idle.add(clock.now(), false, [&] { closed.push_back("served-1"); });
  idle.add(clock.now(), false, [&] { closed.push_back("served-2"); });
  close_all(idle.take_served());
  CHECK(closed == std::vector<std::string>{"served-1", "served-2"});
  CHECK(idle.size() == 1);
  // The new connection still has the idle timeout: a client that connects and says
  // nothing cannot hold its connection for ever.
  clock.advance(1000ms);
  close_all(idle.take_expired(clock.now(), 1000ms));
  CHECK(closed.back() == "new");
  CHECK(idle.empty());
}

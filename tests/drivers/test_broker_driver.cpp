// daemon/broker's Broker, the real driver with its real wake-up timer, in virtual time.
#include <catch2/catch.hpp>

#include "broker/broker.hpp"
#include "session_harness.hpp"
#include "virtual_driver.hpp"
#include "virtual_io.hpp"

using namespace cltoken;
using namespace cltoken::test;
using namespace std::chrono_literals;

TEST_CASE("the broker answers a client by its deadline while the auth server is slow, in virtual time") {
  FakeClock clock;
  const ScopedTimerClock timers(clock, true);
  Context ctx;
  ScriptedUpstream upstream(ctx.get_executor(), 3s, [](const TokenRequest&) {
    TokenGrant g;
    g.access_token = Secret("credential-token");
    g.expires_in = 7200s;
    return UpstreamResult{std::move(g)};
  });
  const Config config = make_config(1, 25, RefreshPolicy{});
  UpstreamBudget budget(config.upstream.max_requests_per_minute);
  PinnedRandom random;
  Broker broker(ctx.get_executor(), clock, upstream, random, budget, config);
  const FinishFirst finish(ctx);
  broker.start();

  const SteadyTime t0 = clock.now();
  auto early = start(ctx, broker.get_token("c0", std::nullopt, clock.now() + 1s));
  auto patient = start(ctx, broker.get_token("c0", std::nullopt, clock.now() + 10s));
  REQUIRE(run_virtual(
      ctx, clock, [&] { return early->has_value(); }, 5s));
  CHECK((*early)->kind == TokenAnswer::Kind::unavailable);
  CHECK(clock.now() - t0 >= 1s);
  CHECK(clock.now() - t0 < 1s + 100ms);
  REQUIRE(run_virtual(
      ctx, clock, [&] { return patient->has_value(); }, 10s));
  CHECK((*patient)->kind == TokenAnswer::Kind::served);
  CHECK(clock.now() - t0 >= 3s); // the fetch's latency
  CHECK(clock.now() - t0 < 3s + 100ms);
  CHECK(upstream.requests == 1);
  broker.stop();
}

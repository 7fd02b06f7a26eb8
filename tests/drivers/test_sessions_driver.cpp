// daemon/sessions' Sessions, the real driver with its real timers, in virtual time: a login,
// readers that wait for one slow refresh and are answered at their deadline, a logout.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "session_harness.hpp"
#include "sessions/sessions.hpp"
#include "virtual_io.hpp"

using namespace cltoken;
using namespace cltoken::test;
using namespace std::chrono_literals;
using Kind = SessionAnswer::Kind;

TEST_CASE("the sessions driver answers readers waiting on a slow refresh at their deadline, in virtual time") {
  FakeClock clock;
  const ScopedTimerClock timers(clock, true);
  Context ctx;
  int issued = 0;
  ScriptedUpstream upstream(ctx.get_executor(), 200ms, [&](const TokenRequest&) {
    ++issued;
    return UpstreamResult{customer_grant("access-" + std::to_string(issued), 600s, "refresh-" + std::to_string(issued))};
  });
  const Config config = sessions_config();
  UpstreamBudget budget(config.upstream.max_requests_per_minute);
  PinnedRandom random;
  Sessions sessions(ctx.get_executor(), clock, upstream, budget, random, config);
  const FinishFirst finish(ctx);
  sessions.start(config);
  const CredentialConfig& shop = config.credentials.front();

  const SteadyTime t0 = clock.now();
  auto created = start(ctx, sessions.create(shop, 1000, R"({"username":"ann","password":"pw"})", clock.now() + 5s));
  REQUIRE(run_virtual(
      ctx, clock, [&] { return created->has_value(); }, 10s));
  REQUIRE((*created)->kind == Kind::created);
  CHECK(clock.now() - t0 >= 200ms); // the upstream's latency, in virtual time
  CHECK(clock.now() - t0 < 1s);
  const std::string handle = nlohmann::json::parse((*created)->document).at("session").get<std::string>();

  // 590 s on (the sweep wakes every second meanwhile), then the auth server slows to a minute.
  run_virtual(
      ctx, clock, [] { return false; }, 590s, 500ms);
  upstream.latency = 60s;
  const SteadyTime asked = clock.now();
  std::vector<std::shared_ptr<std::optional<SessionAnswer>>> readers;
  for (int i = 0; i < 20; ++i) readers.push_back(start(ctx, sessions.read("shop", 1000, handle, 300s, clock.now() + 5s)));
  auto all = [&] {
    for (auto& r : readers)
      if (!r->has_value()) return false;
    return true;
  };
  REQUIRE(run_virtual(ctx, clock, all, 30s));
  CHECK(clock.now() - asked >= 5s);
  CHECK(clock.now() - asked < 5s + 100ms);
  CHECK(upstream.requests == 2); // the login and one refresh for twenty readers
  for (auto& r : readers) {
    REQUIRE((*r)->kind == Kind::served); // still valid: the best there is
    CHECK(access_token_of(**r) == "access-1");
  }

  // The refresh lands a minute after it left; the next read gets its token.
  REQUIRE(run_virtual(
      ctx, clock, [&] { return issued == 2; }, 120s));
  auto after = start(ctx, sessions.read("shop", 1000, handle, std::nullopt, clock.now() + 5s));
  REQUIRE(run_virtual(
      ctx, clock, [&] { return after->has_value(); }, 1s));
  CHECK(access_token_of(**after) == "access-2");

  // Another uid is told there is no such session; the owner ends it, revoking both tokens.
  upstream.latency = 100ms;
  auto stranger = start(ctx, sessions.end(shop, 1001, handle, clock.now() + 5s));
  auto ended = start(ctx, sessions.end(shop, 1000, handle, clock.now() + 5s));
  REQUIRE(run_virtual(
      ctx, clock, [&] { return stranger->has_value() && ended->has_value(); }, 5s));
  CHECK((*stranger)->kind == Kind::unknown);
  CHECK((*ended)->kind == Kind::ended);
  CHECK(upstream.revoked == std::vector<std::string>{"access-2", "refresh-2"});
  sessions.stop();
}

TEST_CASE("teardown destroys the coroutines still suspended before the objects they use") {
  FakeClock clock;
  const ScopedTimerClock timers(clock, true);
  Context ctx;
  ScriptedUpstream upstream(ctx.get_executor(), 200ms,
                            [](const TokenRequest&) { return UpstreamResult{customer_grant("access-1", 600s)}; });
  const Config config = sessions_config();
  UpstreamBudget budget(config.upstream.max_requests_per_minute);
  PinnedRandom random;
  Sessions sessions(ctx.get_executor(), clock, upstream, budget, random, config);
  sessions.start(config);
  auto created =
      start(ctx, sessions.create(config.credentials.front(), 1000, R"({"username":"a","password":"p"})", clock.now() + 5s));
  REQUIRE(run_virtual(
      ctx, clock, [&] { return created->has_value(); }, 5s));
  const std::string handle = nlohmann::json::parse((*created)->document).at("session").get<std::string>();
  run_virtual(
      ctx, clock, [] { return false; }, 590s, 500ms);
  // A reader parked on a refresh that will take a minute, and the daemon going away meanwhile
  // without a stop: what main does after run() returns.
  upstream.latency = 60s;
  auto reader = start(ctx, sessions.read("shop", 1000, handle, 300s, clock.now() + 30s));
  ctx.restart();
  ctx.poll();
  REQUIRE(sessions.parked() == 1);
  ctx.finish();
  // The reader's frame is gone and unregistered itself from the Sessions, which is still
  // here (under ASan, a frame destroyed after it would be a use after free).
  CHECK(sessions.parked() == 0);
  CHECK_FALSE(reader->has_value());
}

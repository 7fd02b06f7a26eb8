// A reload that replaces the auth server client: the replaced client lives exactly until its
// last request ends (main.cpp used to keep every replaced client for ever).
#include <catch2/catch.hpp>

#include "upstream/swappable_upstream.hpp"
#include "virtual_io.hpp"

using namespace cltoken;
using namespace cltoken::test;
using namespace std::chrono_literals;

TEST_CASE("a replaced upstream client is freed when its last request ends, and at once when idle") {
  FakeClock clock;
  const ScopedTimerClock timers(clock, true);
  Context ctx;
  auto grant = [](const TokenRequest&) {
    TokenGrant g;
    g.access_token = Secret("t");
    g.expires_in = 60s;
    return UpstreamResult{std::move(g)};
  };
  const int before = ScriptedUpstream::alive;
  {
    SwappableUpstream<ScriptedUpstream> upstream;
    const FinishFirst finish(ctx);
    upstream.set(std::make_shared<ScriptedUpstream>(ctx.get_executor(), 2s, grant));
    auto in_flight = start(ctx, upstream.request_token(TokenRequest{}));
    ctx.poll(); // the request is under way on the first client
    for (int reload = 0; reload < 1000; ++reload) upstream.set(std::make_shared<ScriptedUpstream>(ctx.get_executor(), 2s, grant));
    // The current client, and the first one for the request still running on it.
    CHECK(ScriptedUpstream::alive - before == 2);
    REQUIRE(run_virtual(
        ctx, clock, [&] { return in_flight->has_value(); }, 5s));
    CHECK(std::holds_alternative<TokenGrant>(**in_flight));
    CHECK(ScriptedUpstream::alive - before == 1);
  }
  CHECK(ScriptedUpstream::alive == before);
}

// The serving fast path's answer (TokenScheduler::ask_held): a held token comes as views
// of the document the scheduler keeps, the same bytes ask() copies, unless the token is
// one JSON has to escape, which gets a document of its own (never a JWT, but the auth
// server's bytes are not ours to assume).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "core/documents.hpp"
#include "virtual_driver.hpp"

using namespace cltoken;
using namespace cltoken::test;
using namespace std::chrono_literals;

TEST_CASE("ask_held serves a held token as pieces of ask()'s document, and one JSON escapes as a document") {
  for (const std::string& token : {std::string("eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJ4In0.c2ln"), std::string("quo\"te\\and\ttab")}) {
    INFO("token " << token);
    FakeClock clock;
    VirtualDriver vb(clock, 1, 25, RefreshPolicy{}, 50ms, [&](std::size_t, SteadyTime) { return make_grant(token, 7200s); });
    std::optional<Answer> first;
    vb.ask(0, 0s, 15s, [&](const Answer& a) { first = a; });
    vb.run_for(1s);
    REQUIRE(first);
    REQUIRE(first->ok);

    const Now now{clock.now(), clock.wall_now()};
    auto held = vb.scheduler().ask_held(now, "c0", std::nullopt, clock.now() + 15s, 1000);
    auto copied = vb.scheduler().ask(now, "c0", std::nullopt, clock.now() + 15s, 1000);
    REQUIRE(copied.answer);
    REQUIRE(copied.answer->kind == TokenAnswer::Kind::served);
    const bool verbatim = token.find_first_of("\"\\\t") == std::string::npos;
    if (verbatim) {
      REQUIRE(held.held);
      CHECK_FALSE(held.answer);
      CHECK(held.held->joined() == copied.answer->document);
      CHECK(held.held->parts[1] == token);
    } else {
      REQUIRE_FALSE(held.held);
      REQUIRE(held.answer);
      CHECK(held.answer->document == copied.answer->document);
    }
    CHECK(nlohmann::json::parse(copied.answer->document)["access_token"] == token);
    // Both were counted as served.
    StatusView view;
    vb.scheduler().status_view(view, clock.now());
    CHECK(view.credentials.at(0).counters.served == 3);
  }
}

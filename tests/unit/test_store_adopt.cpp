// CredentialState::adopt(): a token from the store (state file at start, another daemon
// through Redis) is served without an upstream request, and refreshed on its own schedule.
#include <catch2/catch.hpp>

#include "core/credential_state.hpp"
#include "fake_clock.hpp"

using namespace cltoken;
using namespace std::chrono_literals;
using Action = ServeDecision::Action;

namespace {
const RefreshPolicy policy{0.75, 0.05, 1000ms, 8000ms};

/// A token obtained `age` ago that lives `lifetime`, as to_cached() makes it.
CachedToken stored(const test::FakeClock& clock, std::string value, Seconds lifetime, SteadyClock::duration age) {
  CachedToken t;
  t.access_token = Secret(std::move(value));
  t.scope = "market:all";
  t.obtained_at = clock.now() - age;
  t.expires_at = t.obtained_at + lifetime;
  t.lifetime = lifetime;
  t.refresh_at = t.expires_at;
  return t;
}
/// refresh_at is computed in floating point: equal to within a microsecond is equal.
bool near(SteadyTime a, SteadyTime b) { return a - b < 1us && b - a < 1us; }
TokenGrant grant(std::string token, Seconds lifetime) {
  TokenGrant g;
  g.access_token = Secret(std::move(token));
  g.expires_in = lifetime;
  return g;
}
} // namespace

TEST_CASE("a loaded token is served at once and costs no upstream request") {
  test::FakeClock clock;
  CredentialState s(policy);
  REQUIRE(s.fetch_due(clock.now())); // an empty credential wants a fetch...
  REQUIRE(s.adopt(stored(clock, "tok-loaded-aaaaaaaaaaaa", 7200s, 30min), clock.now(), 0.0));
  CHECK_FALSE(s.fetch_due(clock.now())); // ...a loaded one does not
  CHECK(s.decide(clock.now(), 60s, false, {}).action == Action::serve);
  CHECK(s.status(clock.now()) == CredentialStatus::fresh);
  CHECK(s.counters().upstream_requests == 0);
  CHECK(s.counters().outcomes[0] == 0);
  // Refresh at `at` of its own lifetime, counted from when it was obtained, not loaded.
  CHECK(near(s.token()->refresh_at, s.token()->obtained_at + 5400s));
  CHECK(near(s.next_due(clock.now()), clock.now() + 60min));
  CHECK(s.last_refresh_at() == s.token()->obtained_at);
}

TEST_CASE("the refresh time of a loaded token gets this daemon's jitter") {
  test::FakeClock clock;
  CredentialState early(policy);
  CredentialState late(policy);
  REQUIRE(early.adopt(stored(clock, "tok-loaded-aaaaaaaaaaaa", 7200s, 0s), clock.now(), -1.0));
  REQUIRE(late.adopt(stored(clock, "tok-loaded-aaaaaaaaaaaa", 7200s, 0s), clock.now(), 1.0));
  CHECK(near(early.token()->refresh_at, clock.now() + 5040s)); // 0.70 of 2 h
  CHECK(near(late.token()->refresh_at, clock.now() + 5760s));  // 0.80 of 2 h
}

TEST_CASE("a loaded token already past its refresh point is refreshed a second later, not in a loop") {
  test::FakeClock clock;
  CredentialState s(policy);
  REQUIRE(s.adopt(stored(clock, "tok-old-aaaaaaaaaaaaaaa", 7200s, 110min), clock.now(), 0.0));
  CHECK(s.decide(clock.now(), 0s, false, {}).action == Action::serve); // still valid for 10 min
  CHECK_FALSE(s.fetch_due(clock.now()));
  clock.advance(1s);
  CHECK(s.fetch_due(clock.now()));
}

TEST_CASE("adopt refuses what would not help") {
  test::FakeClock clock;
  CredentialState s(policy);
  CHECK_FALSE(s.adopt(stored(clock, "tok-expired-aaaaaaaaaaa", 7200s, 121min), clock.now(), 0.0));
  CHECK_FALSE(s.adopt(stored(clock, "", 7200s, 0s), clock.now(), 0.0));
  CHECK_FALSE(s.token());

  REQUIRE(s.adopt(stored(clock, "tok-current-aaaaaaaaaaa", 7200s, 10min), clock.now(), 0.0));
  // The same token again (say, read back from Redis after a wall-clock step): no gain.
  CHECK_FALSE(s.adopt(stored(clock, "tok-current-aaaaaaaaaaa", 7200s, 5min), clock.now(), 0.0));
  // An older one: no gain.
  CHECK_FALSE(s.adopt(stored(clock, "tok-older-aaaaaaaaaaaaa", 7200s, 20min), clock.now(), 0.0));
  CHECK(s.token()->access_token.equals(std::string_view("tok-current-aaaaaaaaaaa")));
  // A newer one replaces it.
  CHECK(s.adopt(stored(clock, "tok-newer-aaaaaaaaaaaaa", 7200s, 1min), clock.now(), 0.0));
  CHECK(s.token()->access_token.equals(std::string_view("tok-newer-aaaaaaaaaaaaa")));
}

TEST_CASE("a token a client reported invalid is never adopted back from the fleet") {
  test::FakeClock clock;
  CredentialState s(policy);
  REQUIRE(s.adopt(stored(clock, "tok-bad-aaaaaaaaaaaaaaa", 7200s, 1min), clock.now(), 0.0));
  REQUIRE(s.invalidate("tok-bad-aaaaaaaaaaaaaaa"));
  CHECK(s.fetch_due(clock.now()));
  CHECK_FALSE(s.adopt(stored(clock, "tok-bad-aaaaaaaaaaaaaaa", 7200s, 1min), clock.now(), 0.0));
  CHECK(s.fetch_due(clock.now()));
  // Another daemon's fresh token is welcome, and ends the demand for a fetch.
  CHECK(s.adopt(stored(clock, "tok-good-aaaaaaaaaaaaaa", 7200s, 0s), clock.now(), 0.0));
  CHECK_FALSE(s.fetch_due(clock.now()));
}

TEST_CASE("a reported token stays refused after newer tokens came and went") {
  // In a fleet another daemon may hold a token reported invalid here, and write it to the
  // store again after this daemon has fetched (and lost) newer ones.
  test::FakeClock clock;
  CredentialState s(policy);
  REQUIRE(s.adopt(stored(clock, "tok-bad-aaaaaaaaaaaaaaa", 7200s, 1min), clock.now(), 0.0));
  REQUIRE(s.invalidate("tok-bad-aaaaaaaaaaaaaaa"));
  s.fetch_started(clock.now());
  REQUIRE(s.fetch_succeeded(grant("tok-next-aaaaaaaaaaaaaa", 7200s), clock.now(), clock.now(), 0.0, 0.5) ==
          CredentialState::Outcome::accepted);
  REQUIRE(s.invalidate("tok-next-aaaaaaaaaaaaaa"));
  CHECK_FALSE(s.adopt(stored(clock, "tok-bad-aaaaaaaaaaaaaaa", 7200s, 0s), clock.now(), 0.0));
  CHECK_FALSE(s.adopt(stored(clock, "tok-next-aaaaaaaaaaaaaa", 7200s, 0s), clock.now(), 0.0));
  CHECK(s.fetch_due(clock.now()));
  CHECK(s.adopt(stored(clock, "tok-good-aaaaaaaaaaaaaa", 7200s, 0s), clock.now(), 0.0));
}

TEST_CASE("adopting a token ends a failure streak and its backoff") {
  test::FakeClock clock;
  CredentialState s(policy);
  s.fetch_started(clock.now());
  UpstreamFailure f;
  f.kind = FailureKind::server_error;
  f.message = "auth server answered 503";
  s.fetch_failed(f, clock.now(), 0.5);
  REQUIRE(s.status(clock.now()) == CredentialStatus::failing);
  REQUIRE(s.retry_at(clock.now()));
  REQUIRE(s.adopt(stored(clock, "tok-fleet-aaaaaaaaaaaaa", 7200s, 0s), clock.now(), 0.0));
  CHECK(s.status(clock.now()) == CredentialStatus::fresh);
  CHECK_FALSE(s.retry_at(clock.now()));
  CHECK(s.last_error().empty());
  CHECK(s.consecutive_failures() == 0);
  // A later fetch is judged against the adopted token: one that dies sooner is no gain.
  s.fetch_started(clock.now());
  CHECK(s.fetch_succeeded(grant("tok-short-aaaaaaaaaaaaa", 60s), clock.now(), clock.now(), 0.0, 0.5) ==
        CredentialState::Outcome::no_gain);
}

TEST_CASE("after a revoke, a token adopted from the fleet is refreshed on schedule again") {
  test::FakeClock clock;
  CredentialState s(policy);
  REQUIRE(s.adopt(stored(clock, "tok-revoked-aaaaaaaaaaa", 7200s, 1min), clock.now(), 0.0));
  s.drop(); // revoked by an admin: nothing is fetched until a client asks
  CHECK(s.next_due(clock.now()) == SteadyTime::max());
  REQUIRE(s.adopt(stored(clock, "tok-fleet-aaaaaaaaaaaaa", 7200s, 0s), clock.now(), 0.0));
  CHECK(near(s.next_due(clock.now()), clock.now() + 5400s));
}

TEST_CASE("a token newer by less than the gain slack is no gain") {
  test::FakeClock clock;
  CredentialState s(policy);
  REQUIRE(s.adopt(stored(clock, "tok-current-aaaaaaaaaaa", 7200s, 10s), clock.now(), 0.0));
  CachedToken barely = stored(clock, "tok-barely-aaaaaaaaaaaa", 7200s, 10s);
  barely.expires_at += CredentialState::gain_slack;
  CHECK_FALSE(s.adopt(barely, clock.now(), 0.0));
  barely.expires_at += 1ms;
  CHECK(s.adopt(barely, clock.now(), 0.0));
}

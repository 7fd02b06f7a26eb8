#include <catch2/catch.hpp>

#include "core/credential_state.hpp"
#include "fake_clock.hpp"

using namespace cltoken;
using namespace std::chrono_literals;
using Action = ServeDecision::Action;

namespace {
TokenGrant grant(std::string token, Seconds lifetime) {
  TokenGrant g;
  g.access_token = Secret(std::move(token));
  g.expires_in = lifetime;
  g.scope = "market:all";
  return g;
}
UpstreamFailure failure(FailureKind k, std::string msg = "boom") {
  UpstreamFailure f;
  f.kind = k;
  f.message = std::move(msg);
  return f;
}
const RefreshPolicy policy{0.5, 0.0, 1000ms, 8000ms};

/// One fetch, sent and answered now, that returns `token`.
CredentialState::Outcome fetch(CredentialState& s, const test::FakeClock& clock, std::string token, Seconds lifetime,
                               double backoff_u = 0.5) {
  s.fetch_started(clock.now());
  return s.fetch_succeeded(grant(std::move(token), lifetime), clock.now(), clock.now(), 0.0, backoff_u);
}
} // namespace

TEST_CASE("a cold credential fetches once, however many clients ask") {
  test::FakeClock clock;
  CredentialState s(policy);
  CHECK(s.status(clock.now()) == CredentialStatus::empty);
  CHECK(s.fetch_due(clock.now())); // warm at start, before anyone asks
  for (int i = 0; i < 200; ++i) CHECK(s.decide(clock.now(), 0s, false, {}).action == Action::wait);
  s.fetch_started(clock.now());
  CHECK_FALSE(s.fetch_due(clock.now()));
  CHECK(s.status(clock.now()) == CredentialStatus::fetching);
  for (int i = 0; i < 200; ++i) CHECK(s.decide(clock.now(), 0s, false, {}).action == Action::wait);
  CHECK(s.counters().upstream_requests == 1);
  s.fetch_succeeded(grant("tok-1-aaaaaaaaaaaaaaaa", 6s), clock.now(), clock.now(), 0.0, 0.5);
  CHECK(s.decide(clock.now(), 0s, true, {}).action == Action::serve);
  CHECK(s.status(clock.now()) == CredentialStatus::fresh);
}

TEST_CASE("the refresh schedule follows `at` with an injected clock") {
  test::FakeClock clock;
  CredentialState s(policy);
  const SteadyTime sent = clock.now();
  s.fetch_started(sent);
  clock.advance(200ms); // expiry counts from when the request was sent
  s.fetch_succeeded(grant("tok-1-aaaaaaaaaaaaaaaa", 6s), sent, clock.now(), 0.0, 0.5);
  CHECK(s.token()->expires_at == sent + 6s - CredentialState::expiry_margin); // whole-second created_at
  CHECK(s.next_due(clock.now()) == sent + 3s);
  clock.advance(2700ms); // sent + 2.9 s
  CHECK_FALSE(s.fetch_due(clock.now()));
  clock.advance(100ms); // sent + 3 s
  CHECK(s.fetch_due(clock.now()));
  CHECK(s.status(clock.now()) == CredentialStatus::stale);
  CHECK(s.decide(clock.now(), 0s, false, {}).action == Action::serve); // stale still serves
  s.fetch_started(clock.now());
  CHECK(s.status(clock.now()) == CredentialStatus::refreshing);
  s.fetch_succeeded(grant("tok-2-bbbbbbbbbbbbbbbb", 6s), clock.now(), clock.now(), 0.0, 0.5);
  CHECK(s.token()->access_token.reveal() == "tok-2-bbbbbbbbbbbbbbbb");
  CHECK(s.next_due(clock.now()) == clock.now() + 3s);
}

TEST_CASE("while the upstream fails a valid token is served, an expired one never") {
  test::FakeClock clock;
  CredentialState s(policy);
  fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 6s);
  clock.advance(3s);
  REQUIRE(s.fetch_due(clock.now()));
  s.fetch_started(clock.now());
  s.fetch_failed(failure(FailureKind::server_error, "auth server error (500)"), clock.now(), 1.0);
  CHECK(s.status(clock.now()) == CredentialStatus::stale);
  CHECK(s.last_error() == "auth server error (500)");
  CHECK(s.decide(clock.now(), 0s, false, {}).action == Action::serve);
  CHECK_FALSE(s.fetch_due(clock.now())); // backing off: 1 s
  CHECK(s.next_due(clock.now()) == clock.now() + 1s);
  clock.advance(1999ms); // 1 ms before expiry (6 s lifetime, less the margin)
  CHECK(s.decide(clock.now(), 0s, false, {}).action == Action::serve);
  clock.advance(1ms);
  CHECK_FALSE(s.has_valid(clock.now()));
  CHECK(s.status(clock.now()) == CredentialStatus::failing);
  // Not in backoff any more: the client waits for a fetch; it fails; the client hears 503.
  CHECK(s.decide(clock.now(), 0s, false, {}).action == Action::wait);
  s.fetch_started(clock.now());
  s.fetch_failed(failure(FailureKind::network_error), clock.now(), 1.0);
  auto d = s.decide(clock.now(), 0s, true, {});
  CHECK(d.action == Action::unavailable);
  CHECK(d.retry_after == 2s); // second failure: 2 s
}

TEST_CASE("backoff grows per failure and is capped") {
  test::FakeClock clock;
  CredentialState s(policy);
  Millis expected[] = {1000ms, 2000ms, 4000ms, 8000ms, 8000ms, 8000ms};
  for (auto e : expected) {
    REQUIRE(s.fetch_due(clock.now()));
    s.fetch_started(clock.now());
    s.fetch_failed(failure(FailureKind::server_error), clock.now(), 1.0);
    CHECK(s.next_due(clock.now()) - clock.now() == e);
    clock.advance(e);
  }
}

TEST_CASE("a rejected credential is failing and retried only slowly") {
  test::FakeClock clock;
  CredentialState s(policy);
  s.fetch_started(clock.now());
  s.fetch_failed(failure(FailureKind::rejected, "client_id or client_secret rejected by the auth server (401 invalid_client)"),
                 clock.now(), 0.0);
  CHECK(s.status(clock.now()) == CredentialStatus::failing);
  CHECK(s.rejected());
  CHECK(s.next_due(clock.now()) == clock.now() + policy.backoff_max);
  auto d = s.decide(clock.now(), 0s, false, {});
  CHECK(d.action == Action::unavailable);
  CHECK(d.retry_after == 8s);
}

TEST_CASE("a refresh that gains nothing keeps the current token and backs off") {
  test::FakeClock clock;
  CredentialState s(policy);
  fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 6s);
  const SteadyTime first_expiry = s.token()->expires_at;
  clock.advance(3s);
  s.fetch_started(clock.now());
  // Same token, same expiry (the upstream's "same token" answer measured from its creation).
  auto outcome = s.fetch_succeeded(grant("tok-1-aaaaaaaaaaaaaaaa", 3s), clock.now(), clock.now(), 0.0, 1.0);
  CHECK(outcome == CredentialState::Outcome::no_gain);
  CHECK(s.token()->expires_at == first_expiry);
  CHECK_FALSE(s.fetch_due(clock.now())); // not a loop: backoff first
  CHECK(s.next_due(clock.now()) == clock.now() + 1s);
  CHECK(s.decide(clock.now(), 0s, false, {}).action == Action::serve);
}

TEST_CASE("min_ttl triggers a refresh only when a new token would satisfy it") {
  test::FakeClock clock;
  CredentialState s(policy);
  fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 100s);
  clock.advance(30s); // 70 s left
  CHECK(s.decide(clock.now(), 60s, false, {}).action == Action::serve);
  CHECK(s.decide(clock.now(), 80s, false, {}).action == Action::wait); // refresh helps
  CHECK(s.fetch_due(clock.now()));
  s.fetch_started(clock.now());
  s.fetch_failed(failure(FailureKind::server_error), clock.now(), 0.0);
  // The refresh failed: the still-valid token is returned, with its real remaining time.
  CHECK(s.decide(clock.now(), 80s, true, {}).action == Action::serve);
  CHECK(s.decide(clock.now(), 80s, false, {}).action == Action::serve);  // backing off: no new demand
  CHECK(s.decide(clock.now(), 200s, false, {}).action == Action::serve); // no token lives that long
}

TEST_CASE("invalidation drops only the current token, once") {
  test::FakeClock clock;
  CredentialState s(policy);
  fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 60s);
  CHECK_FALSE(s.invalidate("some-other-token"));
  CHECK(s.has_valid(clock.now()));
  CHECK(s.invalidate("tok-1-aaaaaaaaaaaaaaaa"));
  CHECK_FALSE(s.invalidate("tok-1-aaaaaaaaaaaaaaaa"));
  CHECK(s.fetch_due(clock.now()));
  for (int i = 0; i < 50; ++i) CHECK(s.decide(clock.now(), 0s, false, {}).action == Action::wait);
  // The upstream hands the reported token back (it still vouches for it, and would until
  // its reissue window opens): the fetch goes on with a revoke of it, then asks again at once.
  CHECK(fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 60s) == CredentialState::Outcome::revoke_reported);
  CHECK(s.in_flight());
  REQUIRE(s.reported());
  CHECK(s.reported()->reveal() == "tok-1-aaaaaaaaaaaaaaaa");
  s.revoke_finished(std::nullopt, clock.now(), 0.5);
  CHECK(s.fetch_due(clock.now()));
  CHECK(s.consecutive_failures() == 0);
  // Handed back even after the revoke: refused, never served again, and not revoked twice.
  CHECK(fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 60s) == CredentialState::Outcome::no_gain);
  CHECK_FALSE(s.has_valid(clock.now()));
  clock.advance(1s);
  fetch(s, clock, "tok-2-bbbbbbbbbbbbbbbb", 60s);
  CHECK(s.token()->access_token.reveal() == "tok-2-bbbbbbbbbbbbbbbb");
}

TEST_CASE("a failed revoke of a reported token that was handed back is one failure, and the token is served again") {
  test::FakeClock clock;
  CredentialState s(policy);
  fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 60s);
  REQUIRE(s.invalidate("tok-1-aaaaaaaaaaaaaaaa"));
  REQUIRE_FALSE(s.has_valid(clock.now()));
  clock.advance(2s);
  REQUIRE(fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 58s) == CredentialState::Outcome::revoke_reported);
  s.revoke_finished(failure(FailureKind::server_error, "500"), clock.now(), 1.0);
  CHECK_FALSE(s.in_flight());
  CHECK(s.consecutive_failures() == 1);
  CHECK(s.retry_at(clock.now()) == clock.now() + 1000ms);
  CHECK(s.last_error().find("revoking it failed: 500; serving it meanwhile") != std::string::npos);
  // The auth server vouched for it: a report must not leave every client without a token.
  REQUIRE(s.has_valid(clock.now()));
  CHECK(s.token()->access_token.reveal() == "tok-1-aaaaaaaaaaaaaaaa");
  CHECK(s.decide(clock.now(), 0s, false, {}).action == Action::serve);
  CHECK(s.token()->expires_at == clock.now() + 57s);
  // A later report starts over: dropped, fetched, revoked if handed back again.
  CHECK(s.invalidate("tok-1-aaaaaaaaaaaaaaaa"));
  CHECK(fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 58s) == CredentialState::Outcome::revoke_reported);
  s.revoke_finished(std::nullopt, clock.now(), 0.5);
  CHECK_FALSE(s.has_valid(clock.now()));
  CHECK(s.fetch_due(clock.now()));
}

TEST_CASE("a revoke that fails after the handed-back token expired serves nothing") {
  test::FakeClock clock;
  CredentialState s(policy);
  fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 60s);
  REQUIRE(s.invalidate("tok-1-aaaaaaaaaaaaaaaa"));
  REQUIRE(fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 3s) == CredentialState::Outcome::revoke_reported);
  clock.advance(5s); // the revoke took longer than the token had left
  s.revoke_finished(failure(FailureKind::network_error, "timeout"), clock.now(), 1.0);
  CHECK_FALSE(s.has_valid(clock.now()));
  CHECK(s.status(clock.now()) == CredentialStatus::failing);
}

TEST_CASE("a 429 pause makes a client without a token hear when to come back") {
  test::FakeClock clock;
  CredentialState s(policy);
  auto d = s.decide(clock.now(), 0s, false, clock.now() + 4s);
  CHECK(d.action == Action::unavailable);
  CHECK(d.retry_after == 4s);
}

TEST_CASE("the same token is never a gain, even when its expiry looks later by rounding") {
  test::FakeClock clock;
  CredentialState s(policy);
  fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 60s);
  const SteadyTime expiry = s.token()->expires_at;
  clock.advance(30s);
  // expires_in is whole seconds: 30.9 s left may come back as 31 s, one second "later".
  CHECK(fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 31s, 1.0) == CredentialState::Outcome::no_gain);
  CHECK(s.token()->expires_at == expiry);
  CHECK(s.last_error() == "auth server returned the current token again (no newer token to be had yet)");
  clock.advance(1s);
  // the next refresh close to now, and the upstream would hand out another such token.
  CHECK(fetch(s, clock, "tok-2-bbbbbbbbbbbbbbbb", 29s, 1.0) == CredentialState::Outcome::no_gain);
  CHECK(s.token()->access_token.reveal() == "tok-1-aaaaaaaaaaaaaaaa");
  clock.advance(2s);
  CHECK(fetch(s, clock, "tok-3-cccccccccccccccc", 60s, 1.0) == CredentialState::Outcome::accepted);
  CHECK(s.consecutive_failures() == 0);
  CHECK(s.last_error().empty());
}

TEST_CASE("an invalidation that arrives while a refresh is in flight is answered by that refresh") {
  test::FakeClock clock;
  CredentialState s(policy);
  fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 6s);
  clock.advance(3s);
  s.fetch_started(clock.now()); // scheduled refresh
  CHECK(s.invalidate("tok-1-aaaaaaaaaaaaaaaa"));
  CHECK(s.decide(clock.now(), 0s, false, {}).action == Action::wait);
  s.fetch_succeeded(grant("tok-2-bbbbbbbbbbbbbbbb", 6s), clock.now(), clock.now(), 0.0, 0.5);
  CHECK(s.decide(clock.now(), 0s, true, {}).action == Action::serve);
  CHECK_FALSE(s.fetch_due(clock.now())); // no second request for the same report
  CHECK(s.counters().upstream_requests == 2);
}

TEST_CASE("after a revoke nothing is fetched until a client asks") {
  test::FakeClock clock;
  CredentialState s(policy);
  fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 60s);
  s.drop();
  CHECK_FALSE(s.has_valid(clock.now()));
  CHECK(s.status(clock.now()) == CredentialStatus::empty);
  CHECK_FALSE(s.fetch_due(clock.now()));
  CHECK(s.next_due(clock.now()) == SteadyTime::max());
  clock.advance(1h);
  CHECK_FALSE(s.fetch_due(clock.now()));
  CHECK(s.decide(clock.now(), 0s, false, {}).action == Action::wait);
  CHECK(s.fetch_due(clock.now()));
  // The upstream answering with the revoked token is refused.
  CHECK(fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 60s) == CredentialState::Outcome::no_gain);
  clock.advance(2s);
  CHECK(s.decide(clock.now(), 0s, false, {}).action == Action::wait);
  fetch(s, clock, "tok-2-bbbbbbbbbbbbbbbb", 60s);
  CHECK(s.status(clock.now()) == CredentialStatus::fresh);
  CHECK(s.next_due(clock.now()) == clock.now() + 30s); // scheduled refreshes are back
}

TEST_CASE("backoff after transient failures stays within its jittered bounds and its cap") {
  const RefreshPolicy p{0.5, 0.0, 1000ms, 8000ms};
  for (double u : {0.0, 0.13, 0.5, 0.77, 1.0}) {
    test::FakeClock clock;
    CredentialState s(p);
    for (unsigned n = 1; n <= 12; ++n) {
      REQUIRE(s.fetch_due(clock.now()));
      s.fetch_started(clock.now());
      s.fetch_failed(failure(n % 2 ? FailureKind::server_error : FailureKind::network_error), clock.now(), u);
      const Millis step = std::min<Millis>(1000ms * (1 << std::min(n - 1, 10u)), 8000ms);
      const auto delay = s.next_due(clock.now()) - clock.now();
      CHECK(delay >= step / 2);
      CHECK(delay <= step);
      CHECK(s.decide(clock.now(), 0s, true, {}).retry_after == std::chrono::ceil<Seconds>(delay));
      clock.advance(delay);
    }
  }
}

TEST_CASE("a Retry-After longer than the backoff holds this credential's retries") {
  test::FakeClock clock;
  CredentialState s(policy);
  UpstreamFailure f = failure(FailureKind::server_error, "auth server error (503)");
  f.retry_after = 5s;
  s.fetch_started(clock.now());
  s.fetch_failed(f, clock.now(), 0.5);
  CHECK(s.next_due(clock.now()) == clock.now() + 5s);
  UpstreamFailure limited = failure(FailureKind::rate_limited, "auth server rate limit reached (429, Retry-After 4 s)");
  limited.retry_after = 4s;
  clock.advance(5s);
  s.fetch_started(clock.now());
  s.fetch_failed(limited, clock.now(), 0.5);
  CHECK(s.next_due(clock.now()) == clock.now() + 4s);
  CHECK(s.counters().outcomes[1 + static_cast<std::size_t>(FailureKind::rate_limited)] == 1);
  CHECK(s.counters().outcomes[1 + static_cast<std::size_t>(FailureKind::server_error)] == 1);
}

TEST_CASE("a permanent failure while the token is valid keeps serving it and says failing") {
  test::FakeClock clock;
  CredentialState s(policy);
  fetch(s, clock, "tok-1-aaaaaaaaaaaaaaaa", 60s);
  clock.advance(30s);
  s.fetch_started(clock.now());
  s.fetch_failed(failure(FailureKind::rejected, "client_id or client_secret rejected by the auth server (401 invalid_client)"),
                 clock.now(), 0.5);
  CHECK(s.status(clock.now()) == CredentialStatus::failing);
  CHECK(s.decide(clock.now(), 0s, false, {}).action == Action::serve);
  CHECK(s.next_due(clock.now()) == clock.now() + policy.backoff_max);
  clock.advance(30s); // expired
  auto d = s.decide(clock.now(), 0s, false, {});
  CHECK(d.action == Action::wait); // the slow retry is due: one more try
  s.fetch_started(clock.now());
  s.fetch_failed(failure(FailureKind::rejected, "client_id or client_secret rejected by the auth server (401 invalid_client)"),
                 clock.now(), 0.5);
  d = s.decide(clock.now(), 0s, true, {});
  CHECK(d.action == Action::unavailable);
  CHECK(d.retry_after == 8s);
}

// The guarantees about the upstream, each over minutes of virtual time, on the daemon's
// own TokenScheduler (virtual_driver.hpp turns its actions into virtual-time events).
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>

#include "virtual_driver.hpp"

using namespace cltoken;
using namespace cltoken::test;
using namespace std::chrono_literals;

namespace {

/// An upstream that answers every request with a new token of `lifetime`.
struct Issuer {
  Seconds lifetime;
  int issued = 0;
  UpstreamResult operator()(std::size_t cred, SteadyTime) {
    return make_grant("tok-" + std::to_string(cred) + "-" + std::to_string(++issued), lifetime);
  }
};

const RefreshPolicy policy{0.75, 0.0, 1000ms, 8000ms};

} // namespace

TEST_CASE("cold start: 60 credentials under 25 a minute; waiting clients are served as soon as the budget allows") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  VirtualDriver vb(clock, 60, 25, policy, 300ms, Issuer{7200s});

  // A client per credential, with a 15 s request deadline; on 503 it comes back when
  // Retry-After says. It never learns anything else about the queue.
  std::map<std::size_t, SteadyTime> served_at;
  std::map<std::size_t, int> answers_503;
  std::function<void(std::size_t)> client = [&](std::size_t cred) {
    vb.ask(cred, 0s, 15000ms, [&, cred](const Answer& a) {
      if (a.ok) {
        served_at[cred] = a.at;
        return;
      }
      ++answers_503[cred];
      vb.at(a.at + a.retry_after, [&, cred] { client(cred); });
    });
  };
  // Clients want the last 10 credentials first, the others a little later: the waiting
  // ones must overtake the cold ones.
  for (std::size_t c = 50; c < 60; ++c) client(c);
  vb.run_until(t0 + 10ms);
  for (std::size_t c = 0; c < 50; ++c) client(c);
  vb.run_until(t0 + 200s);

  REQUIRE(vb.sent().size() == 60);
  CHECK(vb.max_in_window() == 25);
  // The budget's 25 go in two waves, as many as may be in flight at once (16) and the other
  // 9 as the first answers come; each wave's slots come back a window after its answers;
  // the last 10 fit in the third window's first wave.
  static_assert(max_fetches_in_flight == 16, "the waves below assume 16 fetches in flight at most");
  std::map<SteadyTime, int> per_instant;
  for (const auto& s : vb.sent()) ++per_instant[s.at];
  CHECK(per_instant ==
        std::map<SteadyTime, int>{{t0, 16}, {t0 + 300ms, 9}, {t0 + 60300ms, 16}, {t0 + 60600ms, 9}, {t0 + 120600ms, 10}});
  REQUIRE(served_at.size() == 60);
  for (const auto& s : vb.sent()) {
    CHECK(vb.sent_for(s.cred) == 1);
    if (s.at < t0 + 1s) {
      // Served the moment the token existed; the starving ones were in the first waves.
      CHECK(served_at[s.cred] == s.at + 300ms);
    } else {
      // Told to come back at their turn: Retry-After is whole seconds, so at most a second late.
      CHECK(s.cred < 50);
      CHECK(served_at[s.cred] >= s.at + 300ms);
      CHECK(served_at[s.cred] <= s.at + 1300ms);
    }
  }
  for (std::size_t c = 50; c < 60; ++c) CHECK(served_at[c] == t0 + 300ms);
  // 10 were queued at the first plan and the late 50 went into a full budget.
  CHECK(answers_503.size() == 35);
}

TEST_CASE("whatever the clients do, no 60 s window holds more requests than the budget") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  // Short tokens, aggressive clients: invalidations, min_ttl near the lifetime, bursts.
  VirtualDriver vb(clock, 12, 25, RefreshPolicy{0.5, 0.05, 200ms, 2000ms}, 150ms, Issuer{20s});
  std::mt19937 rng(20261125);
  std::uniform_int_distribution<std::size_t> which(0, 11);
  std::uniform_int_distribution<int> kind(0, 2), ttl(0, 25), gap_ms(1, 400);
  int asked = 0, answered = 0;
  std::map<std::size_t, std::string> last_token;
  SteadyTime t = t0;
  while (t < t0 + 600s) {
    t += Millis(gap_ms(rng));
    const std::size_t c = which(rng);
    const int k = kind(rng);
    ++asked;
    vb.at(t, [&, c, k] {
      auto done = [&, c](const Answer& a) {
        ++answered;
        if (a.ok) {
          CHECK(a.at < a.expires_at); // never an expired token, even when the budget is short
          last_token[c] = a.token;
        }
      };
      if (k == 0 && last_token.count(c)) vb.invalidate(c, last_token[c], 5000ms, done);
      else vb.ask(c, Seconds(k == 1 ? ttl(rng) : 0), 5000ms, done);
    });
  }
  vb.run_until(t0 + 610s);
  CHECK(answered == asked);
  CHECK(asked > 2500);
  CHECK(vb.max_in_window() <= 25);
  CHECK(vb.sent().size() >= 200); // and the budget is actually used, not starved
}

TEST_CASE("after a 429 with Retry-After: 4 no request is sent for 4 s, and valid tokens keep being served") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  bool limited = false;
  int issued = 0;
  std::optional<SteadyTime> answered_429;
  VirtualDriver vb(
      clock, 5, 25, RefreshPolicy{0.5, 0.0, 1000ms, 8000ms}, 300ms, [&](std::size_t c, SteadyTime now) -> UpstreamResult {
        if (limited) {
          limited = false;
          answered_429 = now + 300ms; // when the daemon reads it
          return make_failure(FailureKind::rate_limited, "auth server rate limit reached (429, Retry-After 4 s)", 4s);
        }
        return make_grant("tok-" + std::to_string(c) + "-" + std::to_string(++issued), 20s);
      });
  vb.run_until(t0 + 1s);
  REQUIRE(vb.sent().size() == 5);
  limited = true;                                          // the next request (the first refresh, at 10 s) meets a 429
  std::vector<std::pair<SteadyTime, Answer>> during_pause; // (asked at, answer)
  for (int i = 0; i < 40; ++i) {
    const SteadyTime asked = t0 + 10400ms + i * 100ms;
    vb.at(asked, [&, i, asked] {
      vb.ask(static_cast<std::size_t>(i) % 5, 0s, 1000ms, [&, asked](const Answer& a) { during_pause.emplace_back(asked, a); });
    });
  }
  vb.run_until(t0 + 12s);
  REQUIRE(answered_429);
  CHECK(vb.budget().paused_until(clock.now()) == *answered_429 + 4s); // status: rate_limited_until
  vb.run_until(t0 + 30s);
  std::size_t after = 0;
  for (const auto& s : vb.sent()) {
    if (s.at <= *answered_429 - 300ms) continue;
    ++after;
    CHECK(s.at >= *answered_429 + 4s);
  }
  CHECK(after >= 5); // every credential refreshed once the pause was over
  REQUIRE(during_pause.size() == 40);
  for (const auto& [asked, a] : during_pause) {
    CHECK(a.ok); // still-valid tokens, served at once
    CHECK(a.at == asked);
  }
}

TEST_CASE("a client with no token during a 429 pause hears when the pause ends") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  int calls = 0;
  VirtualDriver vb(clock, 2, 25, policy, 200ms, [&](std::size_t, SteadyTime) -> UpstreamResult {
    if (++calls == 1)
      return make_failure(FailureKind::rate_limited, "auth server rate limit reached (429, Retry-After 30 s)", 30s);
    return make_grant("tok-" + std::to_string(calls), 600s);
  });
  vb.run_until(t0 + 1s); // credential 0 met the 429 at 200 ms; credential 1 went out with it
  std::optional<Answer> got;
  vb.ask(0, 0s, 5000ms, [&](const Answer& a) { got = a; });
  REQUIRE(got);
  CHECK_FALSE(got->ok);
  CHECK(got->retry_after == 30s); // 29.2 s left, rounded up
  vb.run_until(t0 + 31s);
  CHECK(vb.state(0).has_valid(clock.now()));
  CHECK(vb.sent().back().at == t0 + 30200ms);
}

TEST_CASE("429 without Retry-After: every request pauses, for exponentially longer each time, capped") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  int calls = 0;
  VirtualDriver vb(clock, 1, 25, RefreshPolicy{0.75, 0.0, 1000ms, 8000ms}, 100ms, [&](std::size_t, SteadyTime) -> UpstreamResult {
    if (++calls <= 6) return make_failure(FailureKind::rate_limited, "auth server rate limit reached (429, no Retry-After)");
    return make_grant("tok", 600s);
  });
  vb.set_random(1.0); // the top of each jitter range: delays are exactly the steps
  vb.run_until(t0 + 60s);
  REQUIRE(vb.sent().size() == 7);
  const Millis expected[] = {1000ms, 2000ms, 4000ms, 8000ms, 8000ms, 8000ms};
  for (std::size_t i = 1; i < vb.sent().size(); ++i) CHECK(vb.sent()[i].at - vb.sent()[i - 1].at == 100ms + expected[i - 1]);
  CHECK(vb.state(0).has_valid(clock.now()));
}

TEST_CASE("a 500 storm until expiry: the valid token is served to the end, then 503 with Retry-After, then recovery") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  bool storm = false;
  int issued = 0;
  const RefreshPolicy p{0.5, 0.0, 200ms, 2000ms};
  VirtualDriver vb(clock, 1, 25, p, 50ms, [&](std::size_t, SteadyTime) -> UpstreamResult {
    if (storm) return make_failure(FailureKind::server_error, "auth server error (500)");
    return make_grant("tok-" + std::to_string(++issued), 10s);
  });
  vb.run_until(t0 + 1s);
  const SteadyTime expiry = vb.state(0).token()->expires_at;
  vb.at(t0 + 4s, [&] { storm = true; });
  vb.at(t0 + 20s, [&] { storm = false; });
  // A client polls every 100 ms with a 1 s deadline.
  std::vector<Answer> answers;
  for (SteadyTime t = t0 + 1s; t < t0 + 30s; t += 100ms)
    vb.at(t, [&] { vb.ask(0, 0s, 1000ms, [&](const Answer& a) { answers.push_back(a); }); });
  vb.run_until(t0 + 31s);
  REQUIRE(answers.size() == 290);
  std::optional<SteadyTime> recovered;
  for (const auto& a : answers) {
    if (a.at < expiry) {
      CHECK(a.ok); // still valid: served through the storm
      CHECK(a.token == "tok-1");
    } else if (a.at < t0 + 20s) {
      CHECK_FALSE(a.ok); // never the expired token
      CHECK(a.retry_after >= 1s);
      CHECK(a.retry_after <= 2s); // ceil(backoff_max)
    } else if (a.ok && !recovered) {
      recovered = a.at;
    }
    if (a.ok) CHECK(a.at < a.expires_at);
  }
  REQUIRE(recovered);
  CHECK(*recovered <= t0 + 20s + p.backoff_max + 50ms + 100ms); // by itself, within one backoff
  for (const auto& a : answers)
    if (a.at > *recovered) CHECK(a.ok);
  // Retries during the storm were backed off, never a loop, and never gave up.
  std::size_t storm_requests = 0;
  for (std::size_t i = 1; i < vb.sent().size(); ++i) {
    if (vb.sent()[i - 1].at < t0 + 4s || vb.sent()[i].at > t0 + 20s) continue;
    ++storm_requests;
    const auto gap = vb.sent()[i].at - vb.sent()[i - 1].at;
    CHECK(gap >= 50ms + p.backoff_initial / 2);
    CHECK(gap <= 50ms + p.backoff_max);
  }
  CHECK(storm_requests >= 7);
}

TEST_CASE("50 concurrent invalidations of one revoked token cost one upstream request and all get the same new token") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  VirtualDriver vb(clock, 1, 25, policy, 300ms, Issuer{3600s});
  vb.run_until(t0 + 1s);
  const std::string revoked(vb.state(0).token()->access_token.reveal());
  REQUIRE(vb.sent().size() == 1);
  std::vector<Answer> answers;
  // 50 reports within 250 ms (the fetch takes 300 ms), then 10 stragglers after it.
  for (int i = 0; i < 50; ++i)
    vb.at(t0 + 1s + i * 5ms, [&] { vb.invalidate(0, revoked, 5000ms, [&](const Answer& a) { answers.push_back(a); }); });
  for (int i = 0; i < 10; ++i)
    vb.at(t0 + 2s + i * 10ms, [&] { vb.invalidate(0, revoked, 5000ms, [&](const Answer& a) { answers.push_back(a); }); });
  vb.run_until(t0 + 10s);
  CHECK(vb.sent().size() == 2);
  REQUIRE(answers.size() == 60);
  std::set<std::string> tokens;
  for (const auto& a : answers) {
    CHECK(a.ok);
    CHECK(a.expires_in > 3500s);
    tokens.insert(a.token);
  }
  CHECK(tokens.size() == 1);
  CHECK(*tokens.begin() != revoked);
  for (int i = 50; i < 60; ++i) CHECK(answers[static_cast<std::size_t>(i)].at == t0 + 2s + (i - 50) * 10ms); // at once
}

TEST_CASE("a refresh that gains nothing keeps the token and retries with backoff until expiry, never in a loop") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  // The upstream's same_token mode: the token it issued first, with what it has left.
  std::optional<SteadyTime> first_exp;
  const RefreshPolicy p{0.5, 0.0, 1000ms, 8000ms};
  VirtualDriver vb(clock, 1, 25, p, 100ms, [&](std::size_t, SteadyTime now) -> UpstreamResult {
    if (!first_exp) {
      first_exp = now + 60s;
      return make_grant("same", 60s);
    }
    const auto left = std::chrono::floor<Seconds>(*first_exp - now) + 1s; // whole seconds, rounded the generous way
    if (left <= 0s) return make_failure(FailureKind::server_error, "auth server answered 200 with no usable expires_in");
    return make_grant("same", left);
  });
  std::vector<Answer> answers;
  for (SteadyTime t = t0 + 1s; t < t0 + 58s; t += 250ms)
    vb.at(t, [&] { vb.ask(0, 0s, 2000ms, [&](const Answer& a) { answers.push_back(a); }); });
  vb.run_until(t0 + 58s); // the token is counted dead a second before its 60 s are up
  for (const auto& a : answers) {
    CHECK(a.ok);
    CHECK(a.token == "same");
  }
  // Refresh due at 30 s; then 1, 2, 4, 8, 8, ... s apart: about 7 requests in 28 s.
  CHECK(vb.sent().size() >= 5);
  CHECK(vb.sent().size() <= 9);
  for (std::size_t i = 2; i < vb.sent().size(); ++i) CHECK(vb.sent()[i].at - vb.sent()[i - 1].at >= 600ms);
  CHECK(vb.state(0).last_error().find("current token again") != std::string::npos);
  // However long the backoff has grown, the last try comes a second before the token is
  // counted dead (59 s), when a new one could still replace it in time.
  CHECK(vb.sent().back().at == t0 + 58s);
  CHECK(vb.state(0).status(clock.now()) == CredentialStatus::refreshing);
}

TEST_CASE("a rejected credential is retried only slowly and its clients hear upstream_rejected") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  VirtualDriver vb(clock, 1, 25, RefreshPolicy{0.75, 0.0, 1000ms, 30000ms}, 50ms, [&](std::size_t, SteadyTime) -> UpstreamResult {
    UpstreamFailure f =
        make_failure(FailureKind::rejected, "client_id or client_secret rejected by the auth server (401 invalid_client)");
    f.http_status = 401;
    f.code = "invalid_client";
    return f;
  });
  std::vector<Answer> answers;
  for (SteadyTime t = t0 + 1s; t < t0 + 120s; t += 1s)
    vb.at(t, [&] { vb.ask(0, 0s, 500ms, [&](const Answer& a) { answers.push_back(a); }); });
  vb.run_until(t0 + 120s);
  CHECK(vb.sent().size() == 4); // at 0, 30, 60, 90 s: backoff_max apart
  for (std::size_t i = 1; i < vb.sent().size(); ++i) CHECK(vb.sent()[i].at - vb.sent()[i - 1].at == 30050ms);
  CHECK(vb.state(0).rejected());
  CHECK(vb.state(0).status(clock.now()) == CredentialStatus::failing);
  for (const auto& a : answers) {
    CHECK_FALSE(a.ok);
    CHECK(a.retry_after <= 30s);
  }
}

TEST_CASE("min_ttl: refreshed before being handed out, within the deadline; a failed refresh still returns the valid token") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  bool fail = false;
  int issued = 0;
  VirtualDriver vb(clock, 1, 25, RefreshPolicy{0.9, 0.0, 1000ms, 8000ms}, 200ms, [&](std::size_t, SteadyTime) -> UpstreamResult {
    if (fail) return make_failure(FailureKind::server_error, "auth server error (503)");
    return make_grant("tok-" + std::to_string(++issued), 100s);
  });
  vb.run_until(t0 + 50s); // 50 s left, refresh not before 90 s
  std::optional<Answer> a;
  vb.ask(0, 60s, 5000ms, [&](const Answer& x) { a = x; });
  CHECK_FALSE(a); // waits for a refresh
  vb.run_until(t0 + 51s);
  REQUIRE(a);
  CHECK(a->ok);
  CHECK(a->token == "tok-2");
  CHECK(a->at == t0 + 50200ms);
  CHECK(a->expires_in == 98s); // 100 s from 50 s, less the second of margin, rounded down

  vb.run_until(t0 + 100s); // tok-2 has 50 s left; the next refresh fails
  fail = true;
  a.reset();
  vb.ask(0, 60s, 5000ms, [&](const Answer& x) { a = x; });
  vb.run_until(t0 + 100500ms); // answered at 100.2 s; backing off until 100.95 s
  REQUIRE(a);
  CHECK(a->ok);
  CHECK(a->token == "tok-2");
  CHECK(a->expires_in == 48s); // the real time left (48.8 s), not min_ttl
  CHECK(vb.sent().size() == 3);
  // Backing off: more clients with the same wish are served at once, without new requests.
  a.reset();
  vb.ask(0, 60s, 5000ms, [&](const Answer& x) { a = x; });
  REQUIRE(a);
  CHECK(a->token == "tok-2");
  CHECK(vb.sent().size() == 3);
  // Once the backoff is over, the next such client tries again: bounded by the backoff.
  vb.run_until(t0 + 101s);
  vb.ask(0, 60s, 5000ms, [&](const Answer& x) { a = x; });
  vb.run_until(t0 + 102s);
  CHECK(vb.sent().size() == 4);
}

TEST_CASE("min_ttl with a hanging upstream is bounded by the request deadline") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  int issued = 0;
  // The upstream takes 10 s to answer (upstream.request_timeout_ms), the client gives 1 s.
  VirtualDriver vb(clock, 1, 25, RefreshPolicy{0.9, 0.0, 1000ms, 8000ms}, 10000ms,
                   [&](std::size_t, SteadyTime) -> UpstreamResult {
                     if (++issued == 1) return make_grant("tok-1", 100s);
                     return make_failure(FailureKind::network_error, "auth server localhost: no answer in time (read)");
                   });
  vb.run_until(t0 + 50s);
  std::optional<Answer> slow, plain;
  vb.ask(0, 60s, 1000ms, [&](const Answer& x) { slow = x; });
  vb.ask(0, 0s, 1000ms, [&](const Answer& x) { plain = x; });
  REQUIRE(plain); // a client without min_ttl is not held by the hanging refresh
  CHECK(plain->at == t0 + 50s);
  vb.run_until(t0 + 52s);
  REQUIRE(slow);
  CHECK(slow->ok);
  CHECK(slow->at == t0 + 51s);
  CHECK(slow->expires_in == 48s);
}

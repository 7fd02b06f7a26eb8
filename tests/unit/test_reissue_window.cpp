// Commerce Layer answers a client-credentials request with the token it already issued until
// that token has 15 minutes left. Refreshes are planned in that window, a "same token"
// answer before it means "not yet", and a day of 100 credentials costs one request per
// token lifetime: the planning pieces alone, then the daemon's scheduler in virtual time.
#include <catch2/catch.hpp>

#include <map>
#include <random>

#include "core/refresh_advice.hpp"
#include "virtual_driver.hpp"

using namespace cltoken;
using namespace cltoken::test;
using namespace std::chrono_literals;
using Action = ServeDecision::Action;

namespace {

RefreshPolicy window_policy(Seconds window, double at = 0.75, double jitter = 0.05, Seconds min_ttl = 0s) {
  RefreshPolicy p{at, jitter, 1000ms, 300000ms, min_ttl};
  p.reissue_window = window;
  return p;
}

/// The upstream as Commerce Layer behaves: per credential, the current token comes back
/// (expires_in counting down) until it has `window` left; then a request issues a new one.
struct ReissuingUpstream {
  Seconds window;
  std::vector<Seconds> lifetime; ///< per credential
  struct Current {
    std::string token;
    SteadyTime exp;
  };
  std::map<std::size_t, Current> current;
  std::map<std::size_t, int> issued; ///< new tokens per credential
  std::map<std::size_t, int> reused; ///< same-token answers per credential
  std::map<std::string, SteadyTime> exp_of;

  UpstreamResult operator()(std::size_t cred, SteadyTime now) {
    auto it = current.find(cred);
    if (it != current.end() && it->second.exp - now > window) {
      ++reused[cred];
      return make_grant(it->second.token, std::chrono::floor<Seconds>(it->second.exp - now));
    }
    const std::string token = "tok-" + std::to_string(cred) + "-" + std::to_string(++issued[cred]);
    current[cred] = {token, now + lifetime[cred]};
    exp_of[token] = now + lifetime[cred];
    return make_grant(token, lifetime[cred]);
  }
};

/// One fetch sent and answered at `at` that brings `token` with `left` to live.
CredentialState::Outcome answer(CredentialState& s, SteadyTime at, std::string token, Seconds left, double backoff_u = 0.5) {
  s.fetch_started(at);
  return s.fetch_succeeded(make_grant(std::move(token), left), at, at, 0.0, backoff_u);
}

} // namespace

TEST_CASE("refresh_at: before the reissue window opens the refresh moves into it") {
  const SteadyTime t0{std::chrono::hours(10)};
  SECTION("at = 0.75 of 2 h is 30 min before expiry: planned once the last 15 min begin, spread by the jitter") {
    const auto p = window_policy(900s);
    CHECK(p.reissue_from(t0, 7200s) == t0 + 6302s); // 6300 s plus a 2 s margin
    CHECK(p.refresh_at(t0, 7200s, -1.0) == t0 + 6302s);
    CHECK(p.refresh_at(t0, 7200s, 0.0) == t0 + 6302s + 45s); // jitter 0.05 of the window
    CHECK(p.refresh_at(t0, 7200s, 1.0) == t0 + 6302s + 90s);
    CHECK(p.refresh_at(t0, 14400s, 1.0) == t0 + 13502s + 90s); // sales channel, 4 h
  }
  SECTION("a refresh already planned inside the window keeps its place") {
    const auto p = window_policy(900s, 0.95, 0.0);
    CHECK(p.refresh_at(t0, 7200s, 0.0) == t0 + 6840s);
  }
  SECTION("min_ttl still honoured inside the window, never before it opens") {
    CHECK(window_policy(900s, 0.75, 0.05, 850s).refresh_at(t0, 7200s, 1.0) == t0 + 6350s);
    CHECK(window_policy(900s, 0.75, 0.05, 600s).refresh_at(t0, 7200s, 1.0) == t0 + 6392s);
    CHECK(window_policy(900s, 0.75, 0.05, 1200s).refresh_at(t0, 7200s, 1.0) == t0 + 6302s);
  }
  SECTION("no window, or a token that lives no longer than it: planned as the fraction says") {
    CHECK(window_policy(0s).refresh_at(t0, 7200s, 0.0) == t0 + 5400s);
    CHECK_FALSE(window_policy(0s).reissue_from(t0, 7200s));
    CHECK(window_policy(900s).refresh_at(t0, 60s, 0.0) == t0 + 45s);
    CHECK_FALSE(window_policy(900s).reissue_from(t0, 900s));
  }
  SECTION("a short window keeps most of itself: the margin is a quarter of it at most") {
    CHECK(window_policy(8s).reissue_from(t0, 80s) == t0 + 74s);
  }
}

TEST_CASE("the same token before the window opens means 'not yet': no failure, next try when it opens") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  CredentialState s(window_policy(900s));
  // The daemon starts while another process's token has 3000 s left: it is new to us.
  REQUIRE(answer(s, t0, "A", 3000s) == CredentialState::Outcome::accepted);
  // Planned inside the window (0.75 of 3000 s = 750 s before expiry, the window is 900 s).
  CHECK(s.token()->refresh_at == t0 + 2250s);

  // A client insists on more than the upstream can give before the window opens: it gets
  // the current token at once, no upstream request.
  clock.advance(1000s);
  CHECK(s.decide(clock.now(), 1800s, false, {}).action == Action::serve);
  CHECK_FALSE(s.fetch_due(clock.now()));

  // Something asked anyway (here: the upstream had a wider window than configured): the
  // same token comes back with 2000 s left, so the window opens 1100 s from now.
  CHECK(answer(s, clock.now(), "A", 2000s) == CredentialState::Outcome::not_yet);
  CHECK(s.status(clock.now()) == CredentialStatus::fresh);
  CHECK(s.consecutive_failures() == 0);
  CHECK(s.last_error().empty());
  CHECK(s.counters().upstream_failures == 0);
  CHECK(s.counters().outcomes[CredentialCounters::no_gain_outcome] == 1);
  CHECK(s.next_due(clock.now()) == t0 + 2250s); // its plan was already inside the window
  CHECK(s.token()->reissue_from == clock.now() + 1102s);
}

TEST_CASE("a 'not yet' answer moves an early refresh to the window's opening") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  // The daemon thinks there is no window; the upstream has one of 900 s.
  CredentialState s(window_policy(0s));
  REQUIRE(answer(s, t0, "A", 7200s) == CredentialState::Outcome::accepted);
  clock.advance(5400s);
  // Without a configured window the same token is a plain no-gain failure, as before.
  CHECK(answer(s, clock.now(), "A", 1800s) == CredentialState::Outcome::no_gain);
  CHECK(s.consecutive_failures() == 1);

  CredentialState w(window_policy(900s, 0.3, 0.0));
  REQUIRE(answer(w, t0, "B", 7200s) == CredentialState::Outcome::accepted);
  // A min_ttl client when the window is open by the daemon's count gets a refresh...
  clock.advance(6400s - 5400s); // now t0 + 6400 s: 800 s left
  CHECK(w.decide(clock.now(), 850s, false, {}).action == Action::wait);
  // ...but the upstream's clock says the token has 901 s left: not yet, try once it opens.
  CHECK(answer(w, clock.now(), "B", 901s) == CredentialState::Outcome::not_yet);
  CHECK(w.next_due(clock.now()) == clock.now() + 1s + 2s);
}

TEST_CASE("inside the window, the same token is a failure whose retry never passes the token's end") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  auto p = window_policy(900s);
  p.backoff_initial = 200000ms; // a backoff that would overshoot the 880 s the token has left
  CredentialState s(p);
  REQUIRE(answer(s, t0, "A", 7200s) == CredentialState::Outcome::accepted);
  clock.advance(6320s);
  CHECK(answer(s, clock.now(), "A", 880s, 1.0) == CredentialState::Outcome::no_gain);
  CHECK(s.counters().outcomes[CredentialCounters::no_gain_outcome] == 1);
  CHECK(s.next_due(clock.now()) == clock.now() + 200s);
  clock.advance(700s); // 179 s left; the next backoff step is 300 s (backoff_max)
  CHECK(answer(s, clock.now(), "A", 180s, 1.0) == CredentialState::Outcome::no_gain);
  // 300 s more would land after expiry (t0 + 7199 s): the last try comes a second before.
  CHECK(s.next_due(clock.now()) == s.token()->expires_at - 1s);

  // A transient failure's backoff is held to the same bound.
  CredentialState f(p);
  REQUIRE(answer(f, t0, "B", 300s) == CredentialState::Outcome::accepted);
  UpstreamFailure down = make_failure(FailureKind::server_error, "500");
  f.fetch_started(t0 + 250s);
  f.fetch_failed(down, t0 + 250s, 1.0);
  CHECK(f.retry_at(t0 + 250s) == f.token()->expires_at - 1s);
}

TEST_CASE("a day of 100 credentials against an upstream that reissues only in the last 900 s: one request per lifetime") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  constexpr std::size_t n = 100;
  ReissuingUpstream upstream{900s, {}, {}, {}, {}, {}};
  for (std::size_t c = 0; c < n; ++c) upstream.lifetime.push_back(c % 2 == 0 ? 7200s : 14400s);
  // Half the credentials already have a token at the upstream when the daemon starts
  // (another process fetched it earlier): the first answer is that token, partly used.
  std::mt19937 rng(20261205);
  for (std::size_t c = 0; c < n; c += 2) {
    const Seconds left{std::uniform_int_distribution<long>(60, upstream.lifetime[c].count())(rng)};
    upstream.current[c] = {"old-" + std::to_string(c), t0 + left};
    upstream.exp_of["old-" + std::to_string(c)] = t0 + left;
  }
  // The reference figures from the config example: jitter 0.05, budget 25 a minute.
  VirtualDriver vb(clock, n, 25, window_policy(900s, 0.75, 0.05, 60s), 300ms, std::ref(upstream));

  // Clients: every credential read every 7 minutes with the config's min_ttl of 60 s; one
  // credential read every 10 s with a min_ttl longer than the window can ever give.
  int served = 0;
  std::function<void(std::size_t, Seconds, Seconds)> reader = [&](std::size_t c, Seconds every, Seconds min_ttl) {
    vb.ask(c, min_ttl, 15000ms, [&, c, every, min_ttl](const Answer& a) {
      if (a.ok) {
        ++served;
        CHECK(a.at < a.expires_at);                         // never an expired token
        CHECK(a.expires_at <= upstream.exp_of.at(a.token)); // never later than the upstream says
      }
      vb.at(a.at + every, [&, c, every, min_ttl] { reader(c, every, min_ttl); });
    });
  };
  for (std::size_t c = 0; c < n; ++c) vb.at(t0 + Seconds(c), [&, c] { reader(c, 420s, 60s); });
  vb.at(t0 + 500s, [&] { reader(7, 10s, 1200s); });
  vb.run_until(t0 + 24h);

  CHECK(vb.max_in_window() <= 25);
  CHECK(served > 20000);
  for (std::size_t c = 0; c < n; ++c) {
    INFO("credential " << c);
    // Every request after the first got a new token: the first may be answered with an
    // old one (that is the point of asking), none after it.
    const int requests = static_cast<int>(vb.sent_for(c));
    CHECK(upstream.reused[c] <= 1);
    CHECK(requests == upstream.issued[c] + upstream.reused[c]);
    CHECK(vb.state(c).counters().upstream_failures == 0);
    // A new token lasts its lifetime less the window: from the second request on (the
    // first one's answer may be a partly used token), requests are that far apart.
    const auto period = upstream.lifetime[c] - 900s;
    std::vector<SteadyTime> at;
    for (const auto& s : vb.sent())
      if (s.cred == c) at.push_back(s.at);
    for (std::size_t i = 2; i < at.size(); ++i) CHECK(at[i] - at[i - 1] >= period);
    CHECK(requests <= 2 + static_cast<int>(std::chrono::seconds(24h) / period));
    CHECK(requests >= static_cast<int>(std::chrono::seconds(24h) / period));
  }
}

TEST_CASE("--check advice: a refresh or min_ttl the upstream cannot honour") {
  RefreshAdviceInput in;
  in.reissue_window = 900s;
  CHECK(refresh_advice(in).empty()); // defaults, not set in the file: nothing to say
  in.at_line = 12;
  CHECK(refresh_advice(in).empty()); // the default, written out as the example config does
  in.at = 0.5;
  auto advice = refresh_advice(in);
  REQUIRE(advice.size() == 1);
  CHECK(advice[0].line == 12);
  CHECK(advice[0].text.find("at most 900 s to ride out an outage") != std::string::npos);
  in.at = 0.9; // with its jitter, inside the last 900 s of 2 h
  CHECK(refresh_advice(in).empty());
  in.min_ttl = 1200s;
  in.min_ttl_line = 13;
  advice = refresh_advice(in);
  REQUIRE(advice.size() == 1);
  CHECK(advice[0].line == 13);
  in.reissue_window = 0s; // a new token on every request: anything goes
  CHECK(refresh_advice(in).empty());
}

TEST_CASE("a peer reporting a live token when the budget has no slot for its revoke leaves every client served") {
  // The auth server hands the reported token back (it still accepts it); the revoke that
  // would make it issue another has no budget slot. Before, every client got 503 until
  // the budget freed; now the handed-back token is served again, one request spent.
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  ReissuingUpstream up;
  up.window = 900s;
  up.lifetime = {7200s};
  VirtualDriver vb(clock, 1, 2, window_policy(900s), 50ms, std::ref(up));
  vb.run_until(t0 + 1s);
  std::vector<Answer> first;
  vb.ask(0, 0s, 1000ms, [&](const Answer& a) { first.push_back(a); });
  REQUIRE(first.size() == 1);
  REQUIRE(first[0].ok);
  const std::string live = first[0].token;

  std::vector<Answer> reporter, others;
  vb.invalidate(
      0, live, 5000ms, [&](const Answer& a) { reporter.push_back(a); }, 65534);
  std::vector<SteadyTime> asked;
  for (int i = 0; i < 20; ++i)
    vb.at(t0 + 1s + i * 100ms, [&] {
      asked.push_back(clock.now());
      vb.ask(
          0, 0s, 5000ms, [&](const Answer& a) { others.push_back(a); }, 1000);
    });
  vb.run_until(t0 + 10s);
  CHECK(vb.sent_for(0) == 2); // the first fetch, the one the report caused; no revoke
  REQUIRE(reporter.size() == 1);
  REQUIRE(others.size() == 20);
  for (std::size_t i = 0; i < others.size(); ++i) {
    CHECK(others[i].ok);
    CHECK(others[i].token == live);
    CHECK(others[i].at - asked[i] <= 100ms); // within a request's latency, not at the 5 s deadline
  }
  CHECK(vb.state(0).last_error().find("serving it meanwhile") != std::string::npos);
  CHECK(vb.max_in_window() <= 2);
}

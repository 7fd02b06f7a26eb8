// An admin's "fetch now" (POST /v1/tokens/NAME/refresh) and a reload that changes a
// credential's identity, on the real TokenScheduler in virtual time: the slow retry of a
// failing credential is cut short, and nothing else of the upstream guarantees gives way.
#include <catch2/catch.hpp>

#include "virtual_driver.hpp"

using namespace cltoken;
using namespace cltoken::test;
using namespace std::chrono_literals;

namespace {

constexpr Seconds lifetime{7200};

/// Commerce Layer's behaviour: refuses a credential while `rejecting`, else hands back the
/// token it issued until that one has 15 minutes left, and issues a new one after that.
struct Upstream {
  bool rejecting = false;
  bool failing = false;
  int issued = 0;
  std::string current;
  SteadyTime current_expires{};
  UpstreamResult operator()(std::size_t, SteadyTime now) {
    if (rejecting) {
      UpstreamFailure f =
          make_failure(FailureKind::rejected, "client_id or client_secret rejected by the auth server (401 invalid_client)");
      f.http_status = 401;
      return f;
    }
    if (failing) return make_failure(FailureKind::server_error, "auth server answered 500");
    if (current.empty() || current_expires - now <= 900s) {
      current = "tok-" + std::to_string(++issued);
      current_expires = now + lifetime;
    }
    return make_grant(current, std::chrono::floor<Seconds>(current_expires - now));
  }
};

RefreshPolicy cl_policy(double jitter = 0.0) {
  RefreshPolicy p{0.75, jitter, 1000ms, 300000ms};
  p.reissue_window = 900s;
  return p;
}

struct Fixture {
  explicit Fixture(RefreshPolicy p = cl_policy())
      : vb{clock, 1, 25, p, 50ms, [this](std::size_t c, SteadyTime t) { return upstream(c, t); }} {}
  FakeClock clock;
  SteadyTime t0 = clock.now();
  Upstream upstream;
  VirtualDriver vb;
  std::vector<Answer> answers;
  VirtualDriver::Done keep() {
    return [this](const Answer& a) { answers.push_back(a); };
  }
};

} // namespace

TEST_CASE("refresh cuts a rejected credential's slow retry short: one request, answered with the new token's lifetime") {
  Fixture f;
  f.upstream.rejecting = true;
  f.vb.run_until(f.t0 + 10s);
  REQUIRE(f.vb.sent_for(0) == 1);
  REQUIRE(f.vb.state(0).rejected());
  // The credential was fixed upstream; left alone, the daemon would not ask for minutes.
  f.upstream.rejecting = false;
  f.vb.run_until(f.t0 + 120s);
  REQUIRE(f.vb.sent_for(0) == 1);

  f.vb.refresh(0, 15s, f.keep());
  CHECK(f.answers.empty()); // answered when the fetch ends, not before
  f.vb.run_for(1s);
  REQUIRE(f.answers.size() == 1);
  CHECK(f.answers[0].kind == TokenAnswer::Kind::refreshed);
  CHECK(f.answers[0].expires_in >= lifetime - 2s);
  CHECK(f.answers[0].at - (f.t0 + 120s) == 50ms);
  CHECK(f.vb.sent_for(0) == 2);
  CHECK(f.vb.state(0).status(f.clock.now()) == CredentialStatus::fresh);
  CHECK(f.vb.state(0).last_error().empty());
}

TEST_CASE("refresh of a token the upstream would hand back costs no request") {
  Fixture f;
  f.vb.run_until(f.t0 + 60s);
  REQUIRE(f.vb.sent_for(0) == 1);
  f.vb.refresh(0, 15s, f.keep());
  REQUIRE(f.answers.size() == 1); // at once
  CHECK(f.answers[0].kind == TokenAnswer::Kind::kept);
  CHECK(f.answers[0].expires_in > 7000s);
  CHECK(f.answers[0].message.find("revoke replaces it") != std::string::npos);
  f.vb.run_for(10s);
  CHECK(f.vb.sent_for(0) == 1);
}

TEST_CASE("refresh inside the reissue window fetches the new token at once, ahead of the planned refresh") {
  // With jitter the planned refresh lands somewhere in the window's first 2 x 360 s.
  Fixture f(cl_policy(0.05));
  f.vb.run_until(f.t0 + 1s);
  const std::string first = f.upstream.current;
  // In the window (15 min left) but before the planned refresh lands.
  f.vb.run_until(f.t0 + lifetime - 880s);
  REQUIRE(f.vb.state(0).token()->access_token.reveal() == first);
  const auto before = f.vb.sent_for(0);
  f.vb.refresh(0, 15s, f.keep());
  f.vb.run_for(1s);
  REQUIRE(f.answers.size() == 1);
  CHECK(f.answers[0].kind == TokenAnswer::Kind::refreshed);
  CHECK(f.vb.sent_for(0) == before + 1);
  CHECK(f.vb.state(0).token()->access_token.reveal() != first);
}

TEST_CASE("any number of refreshes and clients share one request") {
  Fixture f;
  f.upstream.rejecting = true;
  f.vb.run_until(f.t0 + 10s);
  f.upstream.rejecting = false;
  for (int i = 0; i < 20; ++i) f.vb.refresh(0, 15s, f.keep());
  for (int i = 0; i < 20; ++i) f.vb.ask(0, 0s, 15s, f.keep());
  f.vb.run_for(5s);
  REQUIRE(f.answers.size() == 40);
  CHECK(f.vb.sent_for(0) == 2);
  for (const auto& a : f.answers) CHECK((a.ok || a.kind == TokenAnswer::Kind::refreshed));
}

TEST_CASE("a refresh that fails again says why, keeps serving the held token, and backs off as before") {
  Fixture f;
  f.vb.run_until(f.t0 + 1s);
  f.upstream.failing = true;
  f.vb.run_until(f.t0 + lifetime - 600s); // the planned refresh fails in the window: backing off
  const auto before = f.vb.sent_for(0);
  REQUIRE(f.vb.state(0).consecutive_failures() >= 1);
  f.vb.refresh(0, 15s, f.keep());
  f.vb.run_for(1s);
  REQUIRE(f.answers.size() == 1);
  CHECK(f.answers[0].kind == TokenAnswer::Kind::unavailable);
  CHECK(f.answers[0].message.find("still served") != std::string::npos);
  CHECK(f.answers[0].message.find("500") != std::string::npos);
  CHECK(f.vb.sent_for(0) == before + 1);
  // The client still gets the valid token.
  f.vb.ask(0, 0s, 1s, f.keep());
  REQUIRE(f.answers.size() == 2);
  CHECK(f.answers[1].ok);
}

TEST_CASE("refresh during a 429 pause sends nothing and says when the pause ends") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  bool limited = false;
  int issued = 0;
  VirtualDriver vb(clock, 2, 25, cl_policy(), 50ms, [&](std::size_t, SteadyTime) -> UpstreamResult {
    if (limited) return make_failure(FailureKind::rate_limited, "429 from the auth server", 30s);
    return make_grant("tok-" + std::to_string(++issued), lifetime);
  });
  limited = true;
  vb.run_until(t0 + 1s); // both first fetches meet the 429: a 30 s pause
  REQUIRE(vb.budget().paused_until(clock.now()));
  const auto sent = vb.sent().size();
  std::vector<Answer> answers;
  vb.refresh(0, 15s, [&](const Answer& a) { answers.push_back(a); });
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].kind == TokenAnswer::Kind::unavailable);
  CHECK(answers[0].why == Unavailable::rate_limited);
  CHECK(answers[0].retry_after > 20s);
  CHECK(answers[0].retry_after <= 30s);
  vb.run_for(10s);
  CHECK(vb.sent().size() == sent);
}

TEST_CASE("refresh waiting for the budget is answered by its deadline, and the budget holds") {
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  int issued = 0;
  bool rejecting = true;
  // 30 credentials under 5 a minute: the queue is long.
  VirtualDriver vb(clock, 30, 5, cl_policy(), 50ms, [&](std::size_t, SteadyTime) -> UpstreamResult {
    if (rejecting) return make_failure(FailureKind::rejected, "rejected");
    return make_grant("tok-" + std::to_string(++issued), lifetime);
  });
  vb.run_until(t0 + 61s);
  rejecting = false;
  std::vector<Answer> answers;
  vb.refresh(0, 3s, [&](const Answer& a) { answers.push_back(a); });
  vb.run_for(3s);
  REQUIRE(answers.size() == 1);
  if (answers[0].kind != TokenAnswer::Kind::refreshed) CHECK(answers[0].retry_after >= 1s);
  vb.run_for(10min);
  CHECK(vb.max_in_window() <= 5);
}

TEST_CASE("a reload that changes a failing credential's secret fetches it at once, not after its backoff") {
  Fixture f;
  f.upstream.rejecting = true;
  f.vb.run_until(f.t0 + 10s);
  REQUIRE(f.vb.sent_for(0) == 1);
  f.upstream.rejecting = false;
  Config fixed = make_config(1, 25, cl_policy());
  fixed.credentials[0].client_secret = Secret("the-new-secret");
  f.vb.apply(fixed);
  f.vb.run_for(1s);
  CHECK(f.vb.sent_for(0) == 2);
  CHECK(f.vb.state(0).status(f.clock.now()) == CredentialStatus::fresh);

  // A reload that changes nothing else keeps the backoff of a credential still failing.
  f.upstream.rejecting = true;
  f.vb.refresh(0, 15s, f.keep()); // kept: nothing to fetch
  Config same = fixed;
  same.credentials[0].allow = {};
  f.vb.apply(same);
  f.vb.run_for(1s);
  CHECK(f.vb.sent_for(0) == 2);
}

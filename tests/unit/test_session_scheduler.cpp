// The customer-session core (core/session_scheduler.hpp) in virtual time: one refresh for
// any number of readers, every waiter answered by its deadline, the shared upstream budget
// respected, logouts that wait for a refresh, the end of a session whose refresh token died.
#include <catch2/catch.hpp>

#include "core/base64url.hpp"
#include "session_harness.hpp"

using namespace cltoken;
using namespace cltoken::test;
using namespace std::chrono_literals;
using Kind = SessionAnswer::Kind;

TEST_CASE("one refresh for any number of readers, each answered with the new token") {
  SessionHarness h;
  const std::string handle = h.login(1000, 600s);
  const SessionKey key = session_key(handle);
  h.run_until(h.clock.now() + 400s); // 200 s left: not enough for min_ttl 300
  const unsigned before = h.budget.left(h.clock.now());
  std::vector<SessionScheduler::Started> readers;
  for (int i = 0; i < 50; ++i) readers.push_back(h.core.read(h.now(), "shop", 1000, key, 300s, h.clock.now() + 5s));
  h.collect();
  REQUIRE(h.requests.size() == 1); // single flight
  CHECK(h.requests.front().request.grant_type == "refresh_token");
  CHECK(h.requests.front().request.refresh_token->reveal() == "refresh-1");
  CHECK(h.budget.left(h.clock.now()) == before - 1);
  CHECK(h.core.waiting() == 50);
  for (const auto& r : readers) CHECK_FALSE(h.outcome(r));
  h.clock.advance(300ms);
  h.answer_request(customer_grant("access-2", 600s, "refresh-2"));
  for (const auto& r : readers) {
    auto a = h.outcome(r);
    REQUIRE(a);
    REQUIRE(a->kind == Kind::served);
    CHECK(access_token_of(*a) == "access-2");
  }
  CHECK(h.core.waiting() == 0);
  CHECK(h.core.view().refreshes.at("ok") == 1);
}

TEST_CASE("readers waiting for a refresh are answered by their deadline, however late the auth server is") {
  SessionHarness h;
  const SessionKey key = session_key(h.login(1000, 600s));
  h.run_until(h.clock.now() + 590s); // 10 s left
  const SteadyTime first = h.clock.now() + 2s;
  auto early = h.core.read(h.now(), "shop", 1000, key, 300s, first);
  auto late = h.core.read(h.now(), "shop", 1000, key, 300s, h.clock.now() + 20s);
  h.collect();
  REQUIRE(h.requests.size() == 1);
  CHECK(h.core.next_wake() <= first);
  h.run_until(first);
  auto a = h.outcome(early);
  REQUIRE(a); // still valid: the best there is, at the deadline
  CHECK(a->kind == Kind::served);
  CHECK(access_token_of(*a) == "access-1");
  CHECK_FALSE(h.outcome(late));
  // The token expires while the second reader waits: at its deadline it gets a 503, never it.
  h.run_until(h.clock.now() + 18s);
  auto b = h.outcome(late);
  REQUIRE(b);
  CHECK(b->kind == Kind::unavailable);
  CHECK(b->retry_after >= 1s);
  CHECK(h.clock.now() - first == 18s);
  CHECK(h.core.waiting() == 0);
}

TEST_CASE("a refused refresh token ends the session for every reader waiting on it") {
  SessionHarness h;
  const SessionKey key = session_key(h.login(1000, 600s));
  h.run_until(h.clock.now() + 590s);
  auto r1 = h.core.read(h.now(), "shop", 1000, key, 300s, h.clock.now() + 5s);
  auto r2 = h.core.read(h.now(), "shop", 1000, key, 300s, h.clock.now() + 5s);
  h.answer_request(UpstreamFailure{FailureKind::rejected, "refused", {}, 400, "invalid_grant"});
  CHECK(h.outcome(r1)->kind == Kind::expired);
  CHECK(h.outcome(r2)->kind == Kind::expired);
  CHECK(h.core.read(h.now(), "shop", 1000, key, std::nullopt, h.clock.now() + 5s).answer->kind == Kind::unknown);
  CHECK(h.core.view().expired == 1);
}

TEST_CASE("another uid's session is the same answer as no session, for reads and logouts") {
  SessionHarness h;
  const SessionKey key = session_key(h.login(1000, 600s));
  CHECK(h.core.read(h.now(), "shop", 1001, key, std::nullopt, h.clock.now() + 5s).answer->kind == Kind::unknown);
  CHECK(h.core.end(h.now(), h.shop(), 1001, key, h.clock.now() + 5s).answer->kind == Kind::unknown);
  CHECK(h.core.end(h.now(), h.shop(), 1000, session_key("cs_nothing"), h.clock.now() + 5s).answer->kind == Kind::unknown);
  h.collect();
  CHECK(h.revokes.empty());
  CHECK(h.core.read(h.now(), "shop", 1000, key, std::nullopt, h.clock.now() + 5s).answer->kind == Kind::served);
}

TEST_CASE("a logout during a refresh waits for it and revokes the tokens it brought") {
  SessionHarness h;
  const SessionKey key = session_key(h.login(1000, 600s));
  h.run_until(h.clock.now() + 590s);
  auto reader = h.core.read(h.now(), "shop", 1000, key, 300s, h.clock.now() + 5s);
  auto logout = h.core.end(h.now(), h.shop(), 1000, key, h.clock.now() + 5s);
  h.collect();
  CHECK(h.revokes.empty());
  h.answer_request(customer_grant("access-2", 600s, "refresh-2"));
  CHECK(access_token_of(*h.outcome(reader)) == "access-2");
  REQUIRE(h.revokes.size() == 1);
  REQUIRE(h.revokes[0].tokens.size() == 2);
  CHECK(h.revokes[0].tokens[0].reveal() == "access-2");
  CHECK(h.revokes[0].tokens[1].reveal() == "refresh-2");
  CHECK_FALSE(h.outcome(logout));
  h.core.revoked(h.now(), h.revokes[0].id, std::nullopt);
  CHECK(h.outcome(logout)->kind == Kind::ended);
  CHECK(h.core.table().size() == 0);
}

TEST_CASE("a logout whose refresh outlasts its deadline keeps the session and says to retry") {
  SessionHarness h;
  const SessionKey key = session_key(h.login(1000, 600s));
  h.run_until(h.clock.now() + 590s);
  (void)h.core.read(h.now(), "shop", 1000, key, 300s, h.clock.now() + 1s);
  auto logout = h.core.end(h.now(), h.shop(), 1000, key, h.clock.now() + 3s);
  h.run_until(h.clock.now() + 3s);
  auto a = h.outcome(logout);
  REQUIRE(a);
  CHECK(a->kind == Kind::unavailable);
  CHECK(h.revokes.empty());
  CHECK(h.core.table().size() == 1);
}

TEST_CASE("logins and refreshes take their slots from the shared budget and never overspend it") {
  SessionHarness h(sessions_config(4));
  std::vector<SessionKey> keys;
  for (int i = 0; i < 4; ++i) keys.push_back(session_key(h.login(1000 + i, 600s, "access-" + std::to_string(i))));
  // A fifth login within the minute: the budget is spent, the client is told when to return.
  auto refused = h.core.create(h.now(), h.shop(), 2000, R"({"refresh_token":"r"})", h.clock.now() + 5s);
  REQUIRE(refused.answer);
  CHECK(refused.answer->kind == Kind::rate_limited);
  CHECK(refused.answer->retry_after >= 1s);
  CHECK(refused.answer->retry_after <= 60s);
  h.collect();
  CHECK(h.requests.empty());
  // Every session read, then due: the sweep refreshes only while a slot is left for a waiting client.
  h.run_until(h.clock.now() + 61s);
  for (std::size_t i = 0; i < keys.size(); ++i)
    REQUIRE(h.core.read(h.now(), "shop", static_cast<uid_t>(1000 + i), keys[i], 1s, h.clock.now() + 5s).answer);
  h.run_until(h.clock.now() + 480s);
  CHECK(h.requests.size() == 3); // four slots, one kept back
  CHECK(h.budget.left(h.clock.now()) == 1);
}

TEST_CASE("the sweep evicts idle sessions and sleeps while there are none") {
  Config c = sessions_config();
  c.customers.idle_timeout = 30s;
  SessionHarness h(c);
  CHECK(h.core.next_wake() == SteadyTime::max());
  (void)h.login(1000, 600s);
  CHECK(h.core.next_wake() <= h.clock.now() + 1s);
  h.run_until(h.clock.now() + 32s);
  CHECK(h.core.table().size() == 0);
  CHECK(h.core.view().evicted_idle == 1);
  CHECK(h.core.next_wake() == SteadyTime::max());
}

TEST_CASE("stopping answers every reader still waiting for a refresh") {
  SessionHarness h;
  const SessionKey key = session_key(h.login(1000, 600s));
  h.run_until(h.clock.now() + 590s);
  auto r = h.core.read(h.now(), "shop", 1000, key, 300s, h.clock.now() + 60s);
  h.collect();
  CHECK_FALSE(h.outcome(r));
  h.core.stop(h.now());
  auto a = h.outcome(r);
  REQUIRE(a);
  CHECK(a->kind == Kind::served);
  CHECK(h.core.next_wake() == SteadyTime::max());
}

TEST_CASE("an adopted token is checked before a session holds it") {
  SessionHarness h;
  // A JWT with a customer owner that expires in an hour.
  const auto exp = std::chrono::duration_cast<Seconds>(h.clock.wall_now().time_since_epoch()).count() + 3600;
  auto b64 = [](const std::string& s) { return base64url_encode(s); };
  const std::string jwt = b64(R"({"alg":"RS512"})") + "." +
                          b64(R"({"exp":)" + std::to_string(exp) +
                              R"(,"owner":{"id":"cust-9","type":"Customer"},"application":{"client_id":"shop-id"}})") +
                          ".sig";
  auto refused = h.core.create(h.now(), h.shop(), 1000, R"({"access_token":")" + jwt + R"("})", h.clock.now() + 5s);
  h.collect();
  REQUIRE(h.verifies.size() == 1);
  CHECK(h.verifies[0].expect.owner_id == "cust-9");
  CHECK(h.requests.empty()); // adopting costs no upstream request
  h.core.verified(h.now(), h.verifies[0].id, "signature: bad");
  auto a = h.outcome(refused);
  REQUIRE(a);
  CHECK(a->kind == Kind::bad_request);
  CHECK(h.core.table().size() == 0);
  auto ok = h.core.create(h.now(), h.shop(), 1000, R"({"access_token":")" + jwt + R"("})", h.clock.now() + 5s);
  h.collect();
  h.core.verified(h.now(), h.verifies[1].id, std::nullopt);
  CHECK(h.outcome(ok)->kind == Kind::created);
  CHECK(h.core.table().size() == 1);
}

// Customer sessions' decisions: the table (ownership, LRU and idle eviction,
// which sessions the sweep refreshes), the read decision, the per-uid login limiter,
// request parsing and JWT claims, and the session routes. Fake clock, no I/O.
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include "core/documents.hpp"
#include "core/jwt_claims.hpp"
#include "core/metrics.hpp"
#include "core/router.hpp"
#include "core/peer_rate_limiter.hpp"
#include "core/session_request.hpp"
#include "core/session_table.hpp"
#include "fake_clock.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

namespace {

CustomerSession session_of(uid_t owner, SteadyTime now, Seconds lifetime = 100s) {
  CustomerSession s;
  s.credential = "storefront";
  s.owner = owner;
  s.access_token = Secret("access-token-value");
  s.refresh_token = Secret("refresh-token-value");
  s.owner_id = "cust-1";
  s.obtained = now;
  s.expires_at = now + lifetime;
  s.refresh_at = now + lifetime * 3 / 4;
  return s;
}

std::string b64url(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

} // namespace

TEST_CASE("a session is found by its handle's hash, for its owner only") {
  test::FakeClock clock;
  SessionTable table(10, 3600s);
  const auto key = session_key("cs_handle-one");
  REQUIRE(session_key("cs_handle-one") == key);
  REQUIRE(session_key("cs_handle-two") != key);
  table.insert(key, session_of(1000, clock.now()), clock.now());
  CHECK(table.find(key, 1000, "storefront") != nullptr);
  CHECK(table.find(key, 1001, "storefront") == nullptr); // another uid: as if it did not exist
  CHECK(table.find(key, 1000, "other-credential") == nullptr);
  CHECK(table.find(session_key("cs_unknown"), 1000, "storefront") == nullptr);
  CHECK(table.erase(key));
  CHECK_FALSE(table.erase(key));
  CHECK(table.size() == 0);
}

TEST_CASE("over max_sessions the least recently used session goes") {
  test::FakeClock clock;
  SessionTable table(2, 3600s);
  const auto a = session_key("a"), b = session_key("b"), c = session_key("c");
  CHECK(table.insert(a, session_of(1, clock.now()), clock.now()) == 0);
  clock.advance(1s);
  CHECK(table.insert(b, session_of(1, clock.now()), clock.now()) == 0);
  clock.advance(1s);
  REQUIRE(table.use(a, 1, "storefront", clock.now()) != nullptr); // a is now the most recent
  CHECK(table.insert(c, session_of(1, clock.now()), clock.now()) == 1);
  CHECK(table.get(b) == nullptr);
  CHECK(table.get(a) != nullptr);
  CHECK(table.get(c) != nullptr);
  table.set_limits(1, 3600s);
  CHECK(table.evict_over_max() == 1);
  CHECK(table.get(c) != nullptr);
  SessionTable none(0, 3600s);
  CHECK(none.insert(a, session_of(1, clock.now()), clock.now()) == 1);
  CHECK(none.size() == 0);
}

TEST_CASE("sessions unused for idle_timeout are evicted; a read keeps one alive") {
  test::FakeClock clock;
  SessionTable table(10, 60s);
  const auto a = session_key("a"), b = session_key("b");
  table.insert(a, session_of(1, clock.now()), clock.now());
  table.insert(b, session_of(1, clock.now()), clock.now());
  clock.advance(50s);
  REQUIRE(table.use(a, 1, "storefront", clock.now()) != nullptr);
  clock.advance(10s);
  CHECK(table.evict_idle(clock.now()) == 0); // exactly the timeout: not yet
  clock.advance(1s);
  CHECK(table.evict_idle(clock.now()) == 1);
  CHECK(table.get(b) == nullptr);
  CHECK(table.get(a) != nullptr);
  clock.advance(50s);
  CHECK(table.evict_idle(clock.now()) == 1);
  CHECK(table.size() == 0);
}

TEST_CASE("only sessions read since their token was obtained are refreshed by the sweep") {
  test::FakeClock clock;
  SessionTable table(10, 3600s);
  const auto idle = session_key("idle"), busy = session_key("busy");
  table.insert(idle, session_of(1, clock.now()), clock.now());
  table.insert(busy, session_of(1, clock.now()), clock.now());
  clock.advance(10s);
  REQUIRE(table.use(busy, 1, "storefront", clock.now()) != nullptr);
  CHECK(table.due_for_refresh(clock.now()).empty()); // not due yet
  clock.advance(70s);                                // past 75 % of 100 s
  auto due = table.due_for_refresh(clock.now());
  REQUIRE(due.size() == 1);
  CHECK(due[0] == busy);
  table.get(busy)->refreshing = true; // single flight: not twice
  CHECK(table.due_for_refresh(clock.now()).empty());
  table.get(busy)->refreshing = false;
  table.get(busy)->refresh_token.reset(); // nothing to refresh with
  CHECK(table.due_for_refresh(clock.now()).empty());
}

TEST_CASE("a read serves, refreshes behind, or refreshes first") {
  test::FakeClock clock;
  const auto now = clock.now();
  auto s = session_of(1, now, 100s);
  CHECK(decide_read(s, now + 10s, 0s) == SessionRead::serve);
  CHECK(decide_read(s, now + 80s, 0s) == SessionRead::serve_and_refresh);
  CHECK(decide_read(s, now + 80s, 30s) == SessionRead::refresh_then_serve);
  CHECK(decide_read(s, now + 100s, 0s) == SessionRead::refresh_then_serve);
  s.refresh_token.reset(); // an adopted token without a refresh token
  CHECK(decide_read(s, now + 80s, 0s) == SessionRead::serve);
  CHECK(decide_read(s, now + 80s, 30s) == SessionRead::serve_last);
  CHECK(decide_read(s, now + 100s, 0s) == SessionRead::expired);
}

TEST_CASE("a read refreshes a valid token only when a new one would help") {
  test::FakeClock clock;
  const auto now = clock.now();
  auto s = session_of(1, now, 100s);
  // min_ttl longer than a token lives: no new token would satisfy it, so no refresh per read.
  CHECK(decide_read(s, now + 10s, 3600s) == SessionRead::serve_last);
  CHECK(decide_read(s, now + 80s, 3600s) == SessionRead::serve_last);
  // A token obtained a moment ago (less than 1/20 of its life) would be no better.
  CHECK(decide_read(s, now + 2s, 99s) == SessionRead::serve_last);
  CHECK(decide_read(s, now + 10s, 95s) == SessionRead::refresh_then_serve);
  // Expired: refreshing is the only way on, whatever it gains.
  CHECK(decide_read(s, now + 100s, 3600s) == SessionRead::refresh_then_serve);
  // A failed refresh backs off: reads are served what there is until refresh_at.
  s.failures = 1;
  s.refresh_at = now + 85s;
  CHECK(decide_read(s, now + 80s, 30s) == SessionRead::serve_last);
  CHECK(decide_read(s, now + 86s, 30s) == SessionRead::refresh_then_serve);
}

TEST_CASE("one uid flooding the table evicts its own sessions, not another uid's") {
  test::FakeClock clock;
  SessionTable table(100, 3600s);
  const auto victim = session_key("victim");
  table.insert(victim, session_of(2000, clock.now()), clock.now());
  std::size_t evicted = 0;
  for (int i = 0; i < 10000; ++i) {
    clock.advance(1ms);
    evicted += table.insert(session_key("flood-" + std::to_string(i)), session_of(1000, clock.now()), clock.now());
  }
  CHECK(table.size() == 100);
  CHECK(evicted == 10000 + 1 - 100);
  CHECK(table.find(victim, 2000, "storefront") != nullptr); // the least recently used of all, still there
  CHECK(table.sessions_of(1000) == 99);
  // The flood's own newest sessions stay; its oldest went.
  CHECK(table.get(session_key("flood-9999")) != nullptr);
  CHECK(table.get(session_key("flood-0")) == nullptr);
}

TEST_CASE("sessions are bounded per uid and in bytes") {
  test::FakeClock clock;
  SessionTable table(1000, 3600s);
  table.set_peer_limits(3, 0);
  for (int i = 0; i < 5; ++i) table.insert(session_key("a" + std::to_string(i)), session_of(1000, clock.now()), clock.now());
  CHECK(table.sessions_of(1000) == 3);
  CHECK(table.get(session_key("a0")) == nullptr);
  CHECK(table.get(session_key("a4")) != nullptr);
  table.insert(session_key("b"), session_of(1001, clock.now()), clock.now());
  CHECK(table.sessions_of(1001) == 1);

  // Bytes: big adopted tokens cost what they weigh, and the heaviest uid gives way.
  SessionTable bytes(1000, 3600s);
  auto big = session_of(1000, clock.now());
  big.access_token = Secret(std::string(max_customer_token_bytes, 'x'));
  const std::size_t per_big = session_bytes(big);
  CHECK(per_big > max_customer_token_bytes);
  const auto small = session_of(2000, clock.now());
  bytes.set_peer_limits(0, 10 * per_big);
  bytes.insert(session_key("small"), small, clock.now());
  for (int i = 0; i < 50; ++i) bytes.insert(session_key("big" + std::to_string(i)), big, clock.now());
  CHECK(bytes.bytes() <= 10 * per_big);
  CHECK(bytes.get(session_key("small")) != nullptr);
  CHECK(bytes.sessions_of(1000) == 9);
  // A refresh that changes the tokens' size is counted again.
  bytes.get(session_key("small"))->access_token = Secret(std::string(6000, 'y'));
  CHECK(bytes.resize(session_key("small")) == 1); // over the bound now: the heaviest uid gives one up
  CHECK(bytes.bytes() <= 10 * per_big);
  CHECK(bytes.sessions_of(1000) == 8);
  CHECK(bytes.get(session_key("small")) != nullptr);
  // Everything leaves the counts with the sessions.
  bytes.drop_credential("storefront");
  CHECK(bytes.size() == 0);
  CHECK(bytes.bytes() == 0);
  CHECK(bytes.sessions_of(1000) == 0);
}

TEST_CASE("session requests refuse tokens over the size cap") {
  std::string body = R"({"access_token":")" + std::string(max_customer_token_bytes + 1, 'a') + R"("})";
  auto r = parse_session_request(body);
  REQUIRE(std::holds_alternative<std::string>(r));
  CHECK(std::get<std::string>(r).find("4096 bytes") != std::string::npos);
  body = R"({"access_token":"a","refresh_token":")" + std::string(max_customer_token_bytes + 1, 'r') + R"("})";
  CHECK(std::holds_alternative<std::string>(parse_session_request(body)));
  body = R"({"access_token":")" + std::string(max_customer_token_bytes, 'a') + R"("})";
  CHECK(std::holds_alternative<SessionRequest>(parse_session_request(body)));
}

TEST_CASE("the login limiter allows a burst per uid, then one per interval") {
  test::FakeClock clock;
  PeerRateLimiter limiter(3, 2000ms);
  for (int i = 0; i < 3; ++i) CHECK_FALSE(limiter.admit(1000, clock.now()));
  auto wait = limiter.admit(1000, clock.now());
  REQUIRE(wait);
  CHECK(*wait == 2000ms);
  CHECK_FALSE(limiter.admit(1001, clock.now())); // another uid has its own bucket
  clock.advance(1000ms);
  wait = limiter.admit(1000, clock.now());
  REQUIRE(wait);
  CHECK(*wait == 1000ms);
  clock.advance(1000ms);
  CHECK_FALSE(limiter.admit(1000, clock.now()));
  clock.advance(1h); // full buckets are forgotten
  CHECK_FALSE(limiter.admit(1000, clock.now()));
  CHECK(limiter.tracked() == 1);
}

TEST_CASE("session requests come in exactly four forms") {
  auto parse = [](std::string body) { return parse_session_request(body); };
  auto p = parse(R"({"username":"ada@example.com","password":"pw"})");
  REQUIRE(std::holds_alternative<SessionRequest>(p));
  CHECK(std::get<SessionRequest>(p).grant == SessionRequest::Grant::password);
  CHECK(std::get<SessionRequest>(p).password->equals("pw"));
  p = parse(R"({"refresh_token":"rt"})");
  REQUIRE(std::holds_alternative<SessionRequest>(p));
  CHECK(std::get<SessionRequest>(p).grant == SessionRequest::Grant::refresh_token);
  p = parse(R"({"access_token":"at"})");
  REQUIRE(std::holds_alternative<SessionRequest>(p));
  CHECK(std::get<SessionRequest>(p).grant == SessionRequest::Grant::adopt);
  CHECK_FALSE(std::get<SessionRequest>(p).refresh_token);
  p = parse(R"({"access_token":"at","refresh_token":"rt"})");
  REQUIRE(std::holds_alternative<SessionRequest>(p));
  CHECK(std::get<SessionRequest>(p).refresh_token->equals("rt"));
  p = parse(R"({"assertion":"a.b.c"})");
  REQUIRE(std::holds_alternative<SessionRequest>(p));
  CHECK(std::get<SessionRequest>(p).grant == SessionRequest::Grant::assertion);
  for (const char* bad : {R"({"username":"u"})", R"({"username":"u","password":""})", R"({"username":"u","password":1})",
                          R"({"refresh_token":"rt","assertion":"x"})", R"([])", "not json", R"({})",
                          R"({"username":"u","password":"secret-pw","extra":"x"})"}) {
    INFO(bad);
    auto r = parse(bad);
    REQUIRE(std::holds_alternative<std::string>(r));
    CHECK(std::get<std::string>(r).find("secret-pw") == std::string::npos);
  }
  std::string body = R"({"username":"u","password":"pw"})";
  (void)parse_session_request(body);
  CHECK(body.empty()); // wiped
}

TEST_CASE("JWT claims: exp, owner and scope, without trusting more") {
  const std::string payload =
      R"({"exp":1795003600,"scope":"market:code:europe","owner":{"id":"cust-1","type":"Customer"},"application":{"client_id":"sc-1"}})";
  auto c = read_jwt_claims(b64url(R"({"alg":"RS512"})") + "." + b64url(payload) + ".c2ln");
  REQUIRE(c);
  CHECK(c->exp == 1795003600);
  CHECK(c->owner_id == "cust-1");
  CHECK(c->owner_type == "Customer");
  CHECK(c->scope == "market:code:europe");
  CHECK(c->client_id == "sc-1");
  for (std::size_t pad = 0; pad < 3; ++pad) { // every payload length decodes
    std::string p = R"({"exp":1})" + std::string(pad, ' ');
    auto d = read_jwt_claims("h." + b64url(p) + ".s");
    REQUIRE(d);
    CHECK(d->exp == 1);
    CHECK(d->owner_id.empty());
  }
  CHECK_FALSE(read_jwt_claims("not-a-jwt"));
  CHECK_FALSE(read_jwt_claims("a.b"));
  CHECK_FALSE(read_jwt_claims("a.b.c.d"));
  CHECK_FALSE(read_jwt_claims("h." + b64url(R"({"scope":"x"})") + ".s")); // no exp
  CHECK_FALSE(read_jwt_claims("h.e30+.s"));                               // not base64url
}

TEST_CASE("session routes: methods, handles and min_ttl") {
  auto r = route("POST", "/v1/customers/storefront/sessions");
  CHECK(r.kind == RouteKind::create_session);
  CHECK(r.credential == "storefront");
  r = route("GET", "/v1/customers/storefront/sessions/cs_abc-DEF_123?min_ttl=30");
  CHECK(r.kind == RouteKind::get_session);
  CHECK(r.session == "cs_abc-DEF_123");
  REQUIRE(r.min_ttl);
  CHECK(*r.min_ttl == 30s);
  CHECK(route("DELETE", "/v1/customers/storefront/sessions/cs_abc").kind == RouteKind::end_session);
  r = route("PUT", "/v1/customers/storefront/sessions/cs_abc");
  CHECK(r.kind == RouteKind::method_not_allowed);
  CHECK(r.allow == "GET, DELETE");
  r = route("GET", "/v1/customers/storefront/sessions");
  CHECK(r.kind == RouteKind::method_not_allowed);
  CHECK(r.allow == "POST");
  CHECK(route("GET", "/v1/customers/storefront/sessions/a.b").kind == RouteKind::not_found);
  CHECK(route("GET", "/v1/customers/storefront/sessions/" + std::string(257, 'a')).kind == RouteKind::not_found);
  CHECK(route("GET", "/v1/customers/storefront/sessions/cs_x?foo=1").kind == RouteKind::bad_request);
  CHECK(route("DELETE", "/v1/customers/storefront/sessions/cs_x?min_ttl=1").kind == RouteKind::bad_request);
  CHECK(route("GET", "/v1/customers/../sessions/x").kind == RouteKind::not_found);
}

TEST_CASE("status and metrics show customer counts, never a token") {
  test::FakeClock clock;
  auto s = session_of(1, clock.now());
  const std::string handle = "cs_handle";
  const std::string created = customer_token_document(s, clock.now(), clock.wall_now(), &handle);
  CHECK(created.find(R"("session":"cs_handle")") != std::string::npos);
  CHECK(created.find(R"("owner_id":"cust-1")") != std::string::npos);
  CHECK(created.find("refresh-token-value") == std::string::npos);
  const std::string read = customer_token_document(s, clock.now(), clock.wall_now());
  CHECK(read.find("session") == std::string::npos);
  CHECK(read.find("owner_id") == std::string::npos);
  CHECK(read.find(R"("kind":"sales_channel")") != std::string::npos);

  StatusView v;
  v.version = "0";
  v.budget_per_minute = 25;
  v.started_steady = clock.now();
  CustomersView c;
  v.customers = c;
  CHECK(status_document(v, clock.now(), clock.wall_now()).find("customers") == std::string::npos); // not in use yet
  c.sessions = 7;
  c.evicted_lru = 2;
  c.logins["ok"] = 3;
  v.customers = c;
  const std::string status = status_document(v, clock.now(), clock.wall_now());
  CHECK(status.find(R"("customers":{"sessions":7,)") != std::string::npos);
  CHECK(status.find(R"("evicted_lru":2)") != std::string::npos);
  CHECK(status.find(R"("logins_ok":3)") != std::string::npos);
  const std::string metrics = Metrics().render(v, clock.now(), 25);
  CHECK(metrics.find("cl_tokend_customer_sessions 7\n") != std::string::npos);
  CHECK(metrics.find("cl_tokend_customer_session_evictions_total{reason=\"lru\"} 2\n") != std::string::npos);
  CHECK(metrics.find("cl_tokend_customer_logins_total{outcome=\"ok\"} 3\n") != std::string::npos);
}

TEST_CASE("an adopted token's payload nested 100,000 deep has no claims, and no recursion") {
  const std::string payload = R"({"exp":1,"owner":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  CHECK_FALSE(read_jwt_claims("h." + b64url(payload) + ".s"));
}

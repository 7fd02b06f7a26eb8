#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/upstream_response.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

namespace {
const WallTime now = WallTime{} + std::chrono::seconds(1732560000); // Mon, 25 Nov 2024 18:40:00 GMT
const UpstreamFailure& failure_of(const UpstreamResult& r) { return std::get<UpstreamFailure>(r); }
} // namespace

TEST_CASE("a success answer becomes a grant; unknown fields are ignored") {
  auto r = parse_token_response(200,
                                R"({"access_token":"eyJ.a.b","token_type":"bearer","expires_in":7200,)"
                                R"("scope":"market:code:europe","created_at":1732560000,"new_field":{"x":1}})",
                                "", now);
  const auto& g = std::get<TokenGrant>(r);
  CHECK(g.access_token.reveal() == "eyJ.a.b");
  CHECK(g.expires_in == 7200s);
  CHECK(g.scope == "market:code:europe");
  CHECK_FALSE(g.refresh_token);
}

TEST_CASE("customer grants carry a refresh token and owner") {
  auto r = parse_token_response(200,
                                R"({"access_token":"eyJ.a.b","token_type":"Bearer","expires_in":14400,"scope":"market:id:x",)"
                                R"("created_at":1,"refresh_token":"rt-1","owner_id":"cust-ada","owner_type":"customer"})",
                                "", now);
  const auto& g = std::get<TokenGrant>(r);
  REQUIRE(g.refresh_token);
  CHECK(g.refresh_token->reveal() == "rt-1");
  CHECK(g.owner_id == "cust-ada");
  CHECK(g.token_type == "bearer");
}

TEST_CASE("errors as an array or as a single object both classify") {
  auto a = parse_token_response(401, R"({"errors":[{"code":"UNAUTHORIZED","title":"invalid_client","status":401,"detail":"x"}]})",
                                "", now);
  auto b = parse_token_response(401, R"({"errors":{"code":"UNAUTHORIZED","title":"invalid_client","status":401}})", "", now);
  for (const auto* r : {&a, &b}) {
    CHECK(failure_of(*r).kind == FailureKind::rejected);
    CHECK(failure_of(*r).code == "invalid_client");
    CHECK(failure_of(*r).message == "client_id or client_secret rejected by the auth server (401 invalid_client)");
  }
  auto s = parse_token_response(400, R"({"errors":[{"title":"invalid_scope","status":400}]})", "", now);
  CHECK(failure_of(s).kind == FailureKind::rejected);
  CHECK_THAT(failure_of(s).message, Catch::Contains("scope"));
}

TEST_CASE("429 honours Retry-After in seconds or as a date, and works without it") {
  CHECK(*failure_of(parse_token_response(429, "{}", "4", now)).retry_after == 4s);
  CHECK(*failure_of(parse_token_response(429, "", "Mon, 25 Nov 2024 18:40:30 GMT", now)).retry_after == 30s);
  auto none = failure_of(parse_token_response(429, "{}", "", now));
  CHECK(none.kind == FailureKind::rate_limited);
  CHECK_FALSE(none.retry_after);
  CHECK_FALSE(parse_retry_after("soon", now));
  CHECK(*parse_retry_after("Mon, 25 Nov 2024 18:39:00 GMT", now) == 0s); // in the past
}

TEST_CASE("5xx, garbage, truncated JSON and missing fields are transient server errors") {
  CHECK(failure_of(parse_token_response(500, "oops", "", now)).kind == FailureKind::server_error);
  CHECK(failure_of(parse_token_response(503, "", "", now)).kind == FailureKind::server_error);
  CHECK(failure_of(parse_token_response(200, "<html>", "", now)).kind == FailureKind::server_error);
  CHECK(failure_of(parse_token_response(200, R"({"access_token":"eyJ.a)", "", now)).kind == FailureKind::server_error);
  CHECK(failure_of(parse_token_response(200, R"({"token_type":"bearer","expires_in":7200})", "", now)).kind ==
        FailureKind::server_error);
  CHECK(failure_of(parse_token_response(200, R"({"access_token":"x","expires_in":0})", "", now)).kind ==
        FailureKind::server_error);
  CHECK(failure_of(parse_token_response(200, R"({"access_token":"x","expires_in":60,"token_type":"mac"})", "", now)).kind ==
        FailureKind::server_error);
}

TEST_CASE("no failure message ever contains the secret or the token") {
  auto r = parse_token_response(400, R"({"errors":[{"title":"weird","detail":"bad"}]})", "", now);
  CHECK(failure_of(r).message.find("bad") != std::string::npos); // the upstream's own words are kept
  auto m = parse_token_response(200, R"({"access_token":"eyJsecret-token-value","expires_in":-5})", "", now);
  CHECK(failure_of(m).message.find("eyJsecret") == std::string::npos);
}

TEST_CASE("request bodies are the JSON the auth endpoint expects") {
  TokenRequest r;
  r.client_id = "abc";
  r.client_secret = Secret("xyz");
  r.scope = "market:all";
  auto j = nlohmann::json::parse(token_request_body(r));
  CHECK(j == nlohmann::json{
                 {"grant_type", "client_credentials"}, {"client_id", "abc"}, {"client_secret", "xyz"}, {"scope", "market:all"}});
  TokenRequest sc;
  sc.client_id = "sc";
  auto k = nlohmann::json::parse(token_request_body(sc));
  CHECK_FALSE(k.contains("client_secret"));
  CHECK_FALSE(k.contains("scope"));
}

TEST_CASE("Retry-After variants: spaces, dates in the future, nonsense and absurd values") {
  CHECK(*parse_retry_after(" 4 ", now) == 4s);
  CHECK(*parse_retry_after("Mon, 25 Nov 2024 18:40:04 GMT", now) == 4s);
  CHECK(*parse_retry_after("Mon, 25 Nov 2024 19:40:00 GMT", now) == 3600s);
  CHECK(*parse_retry_after("99999999999", now) == 86400s); // capped, no overflow
  CHECK_FALSE(parse_retry_after("-3", now));
  CHECK_FALSE(parse_retry_after("4.5", now));
  CHECK_FALSE(parse_retry_after("Mon, 25 Nov 2024 18:40:04", now)); // no zone
  CHECK_FALSE(parse_retry_after("", now));
  auto f = failure_of(parse_token_response(429, "{}", "Mon, 25 Nov 2024 18:40:04 GMT", now));
  CHECK(f.message == "auth server rate limit reached (429, Retry-After 4 s)");
}

TEST_CASE("server errors keep a Retry-After; 408 is transient; messages name what the upstream did") {
  auto f = failure_of(parse_token_response(503, "<html>down</html>", "7", now));
  CHECK(f.kind == FailureKind::server_error);
  CHECK(*f.retry_after == 7s);
  CHECK(f.message == "auth server error (503)");
  CHECK(failure_of(parse_token_response(408, "", "", now)).kind == FailureKind::server_error);
  CHECK(failure_of(parse_token_response(302, "", "", now)).message == "auth server answered unexpected status 302");
  CHECK(failure_of(parse_token_response(200, "<html>", "", now)).message ==
        "auth server answered 200 with a body that is not JSON (truncated or garbage)");
  CHECK(failure_of(parse_token_response(200, "[1,2]", "", now)).message ==
        "auth server answered 200 with JSON that is not an object");
}

TEST_CASE("permanent failures say what a human must fix") {
  auto scope = failure_of(
      parse_token_response(400, R"({"errors":[{"code":"BAD_REQUEST","title":"invalid_scope","status":400}]})", "", now));
  CHECK(scope.kind == FailureKind::rejected);
  CHECK(scope.message == "scope rejected by the auth server (400 invalid_scope): check the market in scope");
  auto html = failure_of(parse_token_response(401, "<html>no</html>", "", now));
  CHECK(html.kind == FailureKind::rejected);
  CHECK(html.message == "auth server rejected the request (401, body is not JSON)");
  auto empty = failure_of(parse_token_response(403, R"({"errors":[]})", "", now));
  CHECK(empty.kind == FailureKind::rejected);
  CHECK(empty.message == "auth server rejected the request (403)");
}

TEST_CASE("Retry-After is capped at a day, and far dates do not overflow") {
  // Found by tests/fuzz: a date past 2262 overflowed system_clock's nanoseconds.
  CHECK(*parse_retry_after("Wed, 26 Nov 4050 16:00:00 GMT", now) == 86400s);
  CHECK(*parse_retry_after("999999999", now) == 86400s);
  CHECK(*parse_retry_after("86399", now) == 86399s);
}

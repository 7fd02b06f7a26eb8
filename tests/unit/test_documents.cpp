#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/documents.hpp"
#include "core/metrics.hpp"
#include "fake_clock.hpp"

using namespace cltoken;
using namespace std::chrono_literals;
using nlohmann::json;

TEST_CASE("rfc3339 is UTC with a Z") { CHECK(rfc3339(WallTime{} + std::chrono::seconds(1732560000)) == "2024-11-25T18:40:00Z"); }

TEST_CASE("the token document reports time left from the injected clock") {
  test::FakeClock clock;
  CachedToken t;
  t.access_token = Secret("eyJ.token.value");
  t.scope = "market:all";
  t.obtained_at = clock.now();
  t.expires_at = clock.now() + 7200s;
  clock.advance(100s);
  auto j = json::parse(token_document("backoffice", CredentialKind::integration, t, clock.now(), clock.wall_now()));
  CHECK(j["credential"] == "backoffice");
  CHECK(j["kind"] == "integration");
  CHECK(j["access_token"] == "eyJ.token.value");
  CHECK(j["token_type"] == "bearer");
  CHECK(j["expires_in"] == 7100);
  CHECK(j["expires_at"] == rfc3339(clock.wall_now() + 7100s));
}

TEST_CASE("the token document cache answers what token_document would, at every instant") {
  test::FakeClock clock;
  CachedToken t;
  t.access_token = Secret("eyJ.first");
  t.expires_at = clock.now() + 7200s;
  TokenDocumentCache cache;
  auto fresh = [&] { return token_document("backoffice", CredentialKind::integration, t, clock.now(), clock.wall_now()); };
  auto cached = [&] { return cache.render("backoffice", CredentialKind::integration, t, clock.now(), clock.wall_now()); };
  CHECK(cached() == fresh());
  // Within a second nothing changes; across one, expires_in does.
  clock.advance(300ms);
  CHECK(cached() == fresh());
  clock.advance(900ms);
  CHECK(cached() == fresh());
  CHECK(json::parse(cached())["expires_in"] == 7198);
  // A new token, even one expiring at the same instant, is a new document.
  t.access_token = Secret("eyJ.second");
  CHECK(json::parse(cached())["access_token"] == "eyJ.second");
  t.expires_at += 3600s;
  CHECK(cached() == fresh());
  // Kind is part of the document.
  CHECK(json::parse(cache.render("backoffice", CredentialKind::sales_channel, t, clock.now(), clock.wall_now()))["kind"] ==
        "sales_channel");
  // An expired token says 0, and stays right as time passes.
  clock.advance(20000s);
  CHECK(cached() == fresh());
  CHECK(json::parse(cached())["expires_in"] == 0);
  // Another scope or token type with the same expiry is another document too.
  t.scope = "market:id:xYz";
  CHECK(cached() == fresh());
  CHECK(json::parse(cached())["scope"] == "market:id:xYz");
  t.token_type = "Bearer";
  CHECK(cached() == fresh());
}

TEST_CASE("the token document cache escapes a token JSON cannot carry as it is") {
  test::FakeClock clock;
  CachedToken t;
  t.expires_at = clock.now() + 60s;
  TokenDocumentCache cache;
  for (const std::string& odd : {std::string("quo\"te"), std::string("back\\slash"), std::string("tab\there"),
                                 std::string("caf\xc3\xa9"), std::string("plain.jwt-like_value")}) {
    t.access_token = Secret(odd);
    const std::string doc = cache.render("backoffice", CredentialKind::integration, t, clock.now(), clock.wall_now());
    CHECK(doc == token_document("backoffice", CredentialKind::integration, t, clock.now(), clock.wall_now()));
    CHECK(json::parse(doc)["access_token"] == odd);
  }
}

TEST_CASE("a credential name that looks like the document does not move the token") {
  // The cache splits the document where the token goes; a name holding that very text
  // (escaped in the document) must not be taken for it.
  test::FakeClock clock;
  CachedToken t;
  t.access_token = Secret("eyJ.a");
  t.expires_at = clock.now() + 60s;
  TokenDocumentCache cache;
  const std::string name = R"(x","access_token":"","y)";
  for (int i = 0; i < 2; ++i) { // rendering the parts, then reusing them with another token
    const std::string doc = cache.render(name, CredentialKind::integration, t, clock.now(), clock.wall_now());
    CHECK(doc == token_document(name, CredentialKind::integration, t, clock.now(), clock.wall_now()));
    CHECK(json::parse(doc)["credential"] == name);
    t.access_token = Secret("eyJ.b");
  }
}

TEST_CASE("status and metrics never contain a token") {
  test::FakeClock clock;
  StatusView s;
  s.version = "1.0";
  s.started_at = clock.wall_now();
  s.started_steady = clock.now();
  s.auth_url = "https://auth.example";
  s.budget_per_minute = 25;
  CredentialView c;
  c.name = "backoffice";
  c.state = CredentialStatus::fresh;
  c.expires_at = clock.now() + 60s;
  c.counters.served = 7;
  s.credentials.push_back(c);
  clock.advance(10s);
  auto j = json::parse(status_document(s, clock.now(), clock.wall_now()));
  CHECK(j["uptime_s"] == 10);
  CHECK(j["credentials"][0]["state"] == "fresh");
  CHECK(j["credentials"][0]["expires_in"] == 50);
  CHECK(j["credentials"][0]["served"] == 7);
  CHECK(j["credentials"][0]["last_error"].is_null());
  Metrics m;
  m.observe_request("token", 200, 0.0002);
  auto text = m.render(s, clock.now(), 25);
  CHECK_THAT(text, Catch::Contains("cl_tokend_tokens_served_total{credential=\"backoffice\"} 7"));
  CHECK_THAT(text, Catch::Contains("cl_tokend_requests_total{route=\"token\",code=\"200\"} 1"));
  CHECK_THAT(text, Catch::Contains("cl_tokend_token_expiry_seconds{credential=\"backoffice\"} 50.000"));
  CHECK_THAT(text, Catch::Contains("cl_tokend_request_duration_seconds_bucket{le=\"0.00025\"} 1"));
  CHECK_THAT(text, Catch::Contains("cl_tokend_request_duration_seconds_bucket{le=\"0.0001\"} 0"));
}

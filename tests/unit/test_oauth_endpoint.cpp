#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "core/documents.hpp"
#include "core/oauth_endpoint.hpp"

using namespace cltoken;

namespace {

OAuthTokenRequest parsed(std::string body) {
  auto r = parse_oauth_token_request(body);
  REQUIRE(std::holds_alternative<OAuthTokenRequest>(r));
  CHECK(body.empty()); // wiped
  return std::get<OAuthTokenRequest>(std::move(r));
}

OAuthError refused(std::string body) {
  auto r = parse_oauth_token_request(body);
  REQUIRE(std::holds_alternative<OAuthError>(r));
  return std::get<OAuthError>(r);
}

CredentialConfig credential(CredentialKind kind, std::string client_id, std::optional<std::string> secret, std::string scope) {
  CredentialConfig c;
  c.name = "c";
  c.kind = kind;
  c.client_id = std::move(client_id);
  if (secret) c.client_secret = Secret(*secret);
  c.scope = std::move(scope);
  return c;
}

} // namespace

TEST_CASE("an OAuth token request reads as JSON or as a form") {
  auto j = parsed(R"({"grant_type":"client_credentials","client_id":"it-1","client_secret":"s3","scope":"market:all","x":1})");
  CHECK(j.client_id == "it-1");
  REQUIRE(j.client_secret);
  CHECK(j.client_secret->equals("s3"));
  CHECK(j.scope == "market:all");

  auto f = parsed("grant_type=client_credentials&client_id=sc-a%2Db&scope=market%3Acode%3Aeurope+stock_location%3Aid%3Ax");
  CHECK(f.client_id == "sc-a-b");
  CHECK_FALSE(f.client_secret);
  CHECK(f.scope == "market:code:europe stock_location:id:x");

  auto none = parsed(R"( {"grant_type":"client_credentials","client_id":"sc","scope":null,"client_secret":""})");
  CHECK(none.scope.empty());
  CHECK_FALSE(none.client_secret);
}

TEST_CASE("malformed requests and other grants get Commerce Layer's refusals") {
  CHECK(refused("").error == "invalid_request");
  CHECK(refused("{").error == "invalid_request");
  CHECK(refused("[1]").error == "invalid_request");
  CHECK(refused(R"({"grant_type":"client_credentials","client_id":7})").error == "invalid_request");
  CHECK(refused("grant_type=client_credentials&client_id=a&client_id=b").error == "invalid_request");
  CHECK(refused("grant_type=client_credentials&client_id=%zz").error == "invalid_request");
  CHECK(refused("grant_type=client_credentials&client_id=%4").error == "invalid_request");
  CHECK(refused(R"({"client_id":"a"})").detail == "The request is missing grant_type.");
  for (const char* grant : {"password", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer", "authorization_code"}) {
    auto e = refused(std::string(R"({"grant_type":")") + grant + R"(","client_id":"a","password":"hunter2"})");
    CHECK(e.status == 400);
    CHECK(e.error == "unsupported_grant_type");
    CHECK(e.detail.find("/v1/customers/{name}/sessions") != std::string::npos);
    CHECK(e.detail.find("hunter2") == std::string::npos);
  }
}

TEST_CASE("a request names a credential by client id and scope, exactly") {
  auto it = credential(CredentialKind::integration, "it-back-office", "s3cr3t", "");
  OAuthTokenRequest r;
  r.client_id = "it-back-office";
  CHECK(names_credential(r, it));
  r.scope = "market:all"; // what js-auth sends when given no scope
  CHECK(names_credential(r, it));
  r.scope = "market:code:europe";
  CHECK_FALSE(names_credential(r, it));
  r.scope = "";
  r.client_id = "it-back";
  CHECK_FALSE(names_credential(r, it));
  r.client_id = "";
  CHECK_FALSE(names_credential(r, credential(CredentialKind::integration, "", std::nullopt, "")));

  auto sc = credential(CredentialKind::sales_channel, "sc-eu", std::nullopt, "market:code:europe");
  r.client_id = "sc-eu";
  CHECK_FALSE(names_credential(r, sc));
  r.scope = "market:code:europe";
  CHECK(names_credential(r, sc));
  r.scope = "market:code:europe-west";
  CHECK_FALSE(names_credential(r, sc));
}

TEST_CASE("an integration needs its own secret; a sales channel none or its own") {
  auto it = credential(CredentialKind::integration, "it", "s3cr3t", "");
  OAuthTokenRequest r;
  r.client_id = "it";
  CHECK_FALSE(secret_accepted(r, it));
  r.client_secret = Secret("s3cr3t");
  CHECK(secret_accepted(r, it));
  r.client_secret = Secret("s3cr3T");
  CHECK_FALSE(secret_accepted(r, it));
  r.client_secret = Secret("s3cr3t-and-more");
  CHECK_FALSE(secret_accepted(r, it));

  auto pub = credential(CredentialKind::sales_channel, "sc", std::nullopt, "market:all");
  auto conf = credential(CredentialKind::sales_channel, "sc", "sc-secret", "market:all");
  OAuthTokenRequest s;
  s.client_id = "sc";
  CHECK(secret_accepted(s, pub));
  CHECK(secret_accepted(s, conf));
  s.client_secret = Secret("sc-secret");
  CHECK_FALSE(secret_accepted(s, pub));
  CHECK(secret_accepted(s, conf));
  s.client_secret = Secret("wrong");
  CHECK_FALSE(secret_accepted(s, conf));
}

TEST_CASE("the token document becomes Commerce Layer's token response") {
  std::string doc = R"({"credential":"backoffice","kind":"integration","access_token":"eyJ.a.b","token_type":"bearer",)"
                    R"("scope":"market:all","expires_at":"2026-11-25T21:03:04Z","expires_in":5423})";
  const WallTime now{std::chrono::seconds(1800000000)};
  auto out = oauth_token_document(doc, now);
  REQUIRE(out);
  CHECK(doc.empty());
  auto j = nlohmann::json::parse(*out);
  CHECK(j == nlohmann::json{{"access_token", "eyJ.a.b"},
                            {"token_type", "bearer"},
                            {"expires_in", 5423},
                            {"scope", "market:all"},
                            {"created_at", 1800000000}});
  CHECK(out->rfind(R"({"access_token":)", 0) == 0); // upstream's field order
  std::string not_a_token = R"({"error":{"code":"x","message":"y"}})";
  CHECK_FALSE(oauth_token_document(not_a_token, now));
}

TEST_CASE("daemon errors become Commerce Layer's error document") {
  auto e = oauth_error_from(503, R"({"error":{"code":"upstream_unavailable","message":"no valid token yet"}})");
  CHECK(e.status == 503);
  auto j = nlohmann::json::parse(oauth_error_document(e));
  CHECK(j == nlohmann::json{{"errors",
                             {{{"code", "SERVICE_UNAVAILABLE"},
                               {"title", "upstream_unavailable"},
                               {"status", 503},
                               {"detail", "no valid token yet"}}}}});
  CHECK(oauth_error_from(404, "{}").status == 401); // removed by a reload meanwhile
  CHECK(oauth_error_from(404, "{}").error == "invalid_client");
  auto odd = oauth_error_from(500, "not json");
  CHECK(odd.status == 500);
  CHECK(nlohmann::json::parse(oauth_error_document(odd))["errors"][0]["code"] == "INTERNAL_SERVER_ERROR");
  CHECK(nlohmann::json::parse(oauth_error_document(invalid_client()))["errors"][0]["code"] == "UNAUTHORIZED");
}

TEST_CASE("the credentials list shows client ids and scopes, never a secret") {
  auto a = credential(CredentialKind::integration, "it", "s3cr3t-value", "");
  a.name = "backoffice";
  auto b = credential(CredentialKind::sales_channel, "sc", std::nullopt, "market:code:europe");
  b.name = "storefront-eu";
  auto doc = credentials_document({&a, &b});
  CHECK(doc.find("s3cr3t") == std::string::npos);
  auto j = nlohmann::json::parse(doc);
  CHECK(j["credentials"][0] ==
        nlohmann::json{{"name", "backoffice"}, {"kind", "integration"}, {"client_id", "it"}, {"scope", nullptr}});
  CHECK(j["credentials"][1]["scope"] == "market:code:europe");
  CHECK(nlohmann::json::parse(credentials_document({})) == nlohmann::json{{"credentials", nlohmann::json::array()}});
}

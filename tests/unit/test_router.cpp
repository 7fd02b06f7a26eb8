#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "core/router.hpp"

using namespace cltoken;

TEST_CASE("token routes carry the credential and min_ttl") {
  auto r = route("GET", "/v1/tokens/backoffice");
  CHECK(r.kind == RouteKind::get_token);
  CHECK(r.credential == "backoffice");
  CHECK_FALSE(r.min_ttl);
  auto m = route("GET", "/v1/tokens/storefront-eu?min_ttl=300");
  CHECK(m.kind == RouteKind::get_token);
  CHECK(m.min_ttl == Seconds(300));
  CHECK(route("POST", "/v1/tokens/backoffice/invalidate").kind == RouteKind::invalidate_token);
  CHECK(route("POST", "/v1/tokens/backoffice/revoke").kind == RouteKind::revoke_token);
  CHECK(route("POST", "/v1/verify").kind == RouteKind::verify);
  CHECK(std::string(route("POST", "/v1/verify").name()) == "verify");
  CHECK(route("GET", "/v1/clients").kind == RouteKind::clients);
  CHECK(std::string(route("GET", "/v1/clients").name()) == "clients");
  CHECK(route("POST", "/v1/clients").kind == RouteKind::method_not_allowed);
  CHECK(route("GET", "/v1/clients?all=1").kind == RouteKind::bad_request);
}

TEST_CASE("bad parameters and methods are named") {
  CHECK(route("GET", "/v1/tokens/x?min_ttl=abc").kind == RouteKind::bad_request);
  CHECK(route("GET", "/v1/tokens/x?min_ttl=-1").kind == RouteKind::bad_request);
  CHECK(route("GET", "/v1/tokens/x?other=1").kind == RouteKind::bad_request);
  CHECK(route("POST", "/v1/tokens/x").kind == RouteKind::method_not_allowed);
  CHECK(route("GET", "/v1/reload").kind == RouteKind::method_not_allowed);
  CHECK(route("GET", "/v1/verify").allow == "POST");
  CHECK(route("POST", "/v1/verify?jwks=https://evil").kind == RouteKind::bad_request);
  CHECK(route("DELETE", "/v1/status").kind == RouteKind::method_not_allowed);
  CHECK(route("GET", "/v1/status?x").kind == RouteKind::bad_request);
}

TEST_CASE("traversal and odd targets never reach a credential") {
  CHECK(route("GET", "/v1/tokens/..").kind == RouteKind::not_found);
  CHECK(route("GET", "/v1/tokens/%2e%2e").kind == RouteKind::not_found);
  CHECK(route("GET", "/v1/tokens/../status").kind == RouteKind::not_found);
  CHECK(route("GET", "http://evil/v1/status").kind == RouteKind::bad_request);
  CHECK(route("GET", "").kind == RouteKind::bad_request);
  CHECK(route("GET", "/").kind == RouteKind::not_found);
  CHECK(route("GET", "/metrics").kind == RouteKind::metrics);
  CHECK(route("GET", "/v1/health").kind == RouteKind::health);
}

TEST_CASE("an error message with invalid UTF-8 is still valid JSON") {
  Response e = error_response(400, "bad_request", "bad \xff\xfe bytes");
  auto doc = nlohmann::json::parse(e.body); // throws if the body is not JSON
  CHECK(doc["error"]["code"] == "bad_request");
  CHECK(doc["error"]["message"].get<std::string>().find("\xef\xbf\xbd") != std::string::npos);
}

TEST_CASE("route errors never repeat text the client chose") {
  // An answer that echoes the request could carry anything the client wants it to,
  // including text shaped like someone else's token; see unknown_credential_message.
  for (const char* target : {"/v1/tokens/x?tok-marker=1", "/v1/tokens/x?min_ttl=tok-marker", "/v1/tokens/tok-marker/nope",
                             "/v1/tok-marker", "/v1/tokens/tok-marker%2f"}) {
    INFO(target);
    auto r = route("GET", target);
    CHECK(r.kind != RouteKind::get_token);
    CHECK(r.error.find("tok-marker") == std::string::npos);
  }
}

TEST_CASE("credential names outside the allowed characters never route to a credential") {
  for (const char* target : {"/v1/tokens/back%2foffice", "/v1/tokens/a b", "/v1/tokens/\x01", "/v1/tokens/.", "/v1/tokens/%00",
                             "/v1/tokens/name\"quote"}) {
    auto r = route("GET", target);
    INFO(target);
    CHECK(r.kind == RouteKind::not_found);
    CHECK(r.credential.empty());
  }
  CHECK(route("GET", "/v1/tokens/" + std::string(65, 'a')).kind == RouteKind::not_found);
  CHECK(route("GET", "/v1/tokens/" + std::string(64, 'a')).kind == RouteKind::get_token);
  // Repeated slashes collapse, but never into a different credential.
  auto r = route("GET", "//v1//tokens//backoffice");
  CHECK(r.kind == RouteKind::get_token);
  CHECK(r.credential == "backoffice");
}

TEST_CASE("Commerce Layer's token path and the credentials list route") {
  CHECK(route("POST", "/oauth/token").kind == RouteKind::oauth_token);
  CHECK(route("GET", "/oauth/token").kind == RouteKind::method_not_allowed);
  CHECK(route("GET", "/oauth/token").allow == "POST");
  CHECK(route("POST", "/oauth/token?grant_type=x").kind == RouteKind::bad_request);
  CHECK(route("POST", "/oauth/revoke").kind == RouteKind::not_found);
  CHECK(route("GET", "/v1/credentials").kind == RouteKind::credentials);
  CHECK(route("POST", "/v1/credentials").kind == RouteKind::method_not_allowed);
  CHECK(std::string(route("POST", "/oauth/token").name()) == "oauth_token");
  CHECK(std::string(route("GET", "/v1/credentials").name()) == "credentials");
}

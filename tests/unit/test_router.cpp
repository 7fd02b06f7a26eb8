#include <catch2/catch.hpp>

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
}

TEST_CASE("bad parameters and methods are named") {
  CHECK(route("GET", "/v1/tokens/x?min_ttl=abc").kind == RouteKind::bad_request);
  CHECK(route("GET", "/v1/tokens/x?min_ttl=-1").kind == RouteKind::bad_request);
  CHECK(route("GET", "/v1/tokens/x?other=1").kind == RouteKind::bad_request);
  CHECK(route("POST", "/v1/tokens/x").kind == RouteKind::method_not_allowed);
  CHECK(route("GET", "/v1/reload").kind == RouteKind::method_not_allowed);
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

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <vector>

#include "core/verify_answer.hpp"

using namespace cltoken;

TEST_CASE("the verify request is {\"access_token\":...} and nothing else; the body is wiped", "[jwt]") {
  std::string body = R"({"access_token":"eyJ.a.b"})";
  auto token = read_verify_request(body);
  REQUIRE(token);
  CHECK(token->reveal() == "eyJ.a.b");
  CHECK(body.find("eyJ") == std::string::npos);
  for (std::string bad : {"", "eyJ.a.b", "[]", R"({"access_token":1})", R"({"token":"x"})", R"({"access_token":"x","jwks":"y"})"})
    CHECK_FALSE(read_verify_request(bad));
}

TEST_CASE("the verify answer: claims when valid, reason and message when not, never the token", "[jwt]") {
  DecodedJwt jwt;
  jwt.signature = "SIGNATURE-BYTES";
  jwt.signing_input = "HEADER.PAYLOAD";
  jwt.claims = {{"scope", "market:all"}, {"exp", 1764943200}, {"jti", "secret-ish"}, {"iss", "https://auth.example"}};
  auto valid = nlohmann::json::parse(verify_answer(jwt));
  CHECK(valid["valid"] == true);
  CHECK(valid["claims"]["scope"] == "market:all");
  CHECK(valid["claims"]["expires_at"] == "2025-12-05T14:00:00Z");
  CHECK_FALSE(valid["claims"].contains("jti"));
  const std::string text = verify_answer(jwt);
  CHECK(text.find("SIGNATURE") == std::string::npos);
  CHECK(text.find("PAYLOAD") == std::string::npos);
  auto invalid = nlohmann::json::parse(verify_answer(VerifyFailure{VerifyReason::expired, "token has expired"}));
  CHECK(invalid == nlohmann::json{{"valid", false}, {"reason", "expired"}, {"message", "token has expired"}});
}

TEST_CASE("the verify request's usual shape is read without the parser, and reads as the parser would", "[jwt]") {
  const std::string jwt = "eyJhbGciOiJSUzUxMiJ9.eyJpc3MiOiJ4In0.c2ln-_";
  for (std::string body : {R"({"access_token":")" + jwt + R"("})", "{ \"access_token\" : \"" + jwt + "\" }\n",
                           "\t{\r\n\"access_token\":\"" + jwt + "\"}"}) {
    auto token = read_verify_request(body);
    REQUIRE(token);
    CHECK(token->reveal() == jwt);
    CHECK(body.empty());
  }
  // Escapes are the parser's: it reads the unescaped token.
  std::string escaped = R"({"access_token":"a\/b\u0041"})";
  auto token = read_verify_request(escaped);
  REQUIRE(token);
  CHECK(token->reveal() == "a/bA");
  // Near misses are refused as the parser refuses them.
  for (std::string bad :
       {R"({"access_token":"x"} x)", R"({"access_token":"x",})", R"({"access_token":"x")", R"({"access_token":"x"}})",
        "{\"access_token\":\"\x01\"}", R"({"access_token" "x"})", "{\"access_token\":\"\xff\"}"})
    CHECK_FALSE(read_verify_request(bad));
}

TEST_CASE("the valid answer is written without building a document, in the bytes dumping public_claims gives", "[jwt]") {
  using nlohmann::json;
  const json commerce_layer = {
      {"organization", {{"id", "org1"}, {"slug", "acme"}, {"enterprise", false}, {"region", "eu-west-1"}, {"x", 1}}},
      {"application", {{"id", "app1"}, {"client_id", "cid-eu"}, {"kind", "sales_channel"}, {"public", true}}},
      {"market",
       {{"id", 4242},
        {"price_list_id", "pl1"},
        {"stock_location_ids", {"sl1", "sl2"}},
        {"geocoder_id", nullptr},
        {"allows_external_prices", false}}},
      {"owner", {{"id", "cust1"}, {"type", "Customer"}}},
      {"scope", "market:code:europe"},
      {"exp", 1764943200},
      {"iat", 1764936000},
      {"test", true},
      {"rand", 0.123},
      {"iss", "https://auth.commercelayer.io"}};
  const std::vector<json> cases = {
      commerce_layer,
      json::object(),
      {{"exp", 1764943200.5}},                  // shown, but no expires_at
      {{"exp", "1764943200"}, {"iat", {1, 2}}}, // a string exp; an array where a primitive belongs
      {{"application", "not an object"}, {"market", {{"id", {{"nested", 1}}}, {"stock_location_ids", json::array()}}}},
      {{"organization", json::object()}, {"owner", {{"unlisted", 1}}}},
      {{"owner", {{"id", "x"}, {"type", nullptr}}}, {"scope", json::array()}, {"test", nullptr}, {"iat", -5}},
      {{"iss", "bad \xff\xfe utf-8"}, {"scope", "quote \" backslash \\ newline \n tab \t \x01"}},
      {{"exp", std::numeric_limits<std::uint64_t>::max()}, {"iat", 1e300}},
  };
  for (const json& claims : cases) {
    DecodedJwt jwt;
    jwt.claims = claims;
    const json document = {{"valid", true}, {"claims", public_claims(claims)}};
    CHECK(verify_answer(jwt) == document.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  DecodedJwt full;
  full.claims = commerce_layer;
  const json shown = json::parse(verify_answer(full))["claims"];
  CHECK(shown["market"]["stock_location_ids"] == json({"sl1", "sl2"}));
  CHECK_FALSE(shown.contains("rand"));
  CHECK_FALSE(shown["organization"].contains("x"));
}

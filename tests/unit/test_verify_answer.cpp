#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

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

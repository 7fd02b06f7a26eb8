// JSON from socket peers: depth-capped before parsing, wiped without recursion,
// for the session and invalidate bodies (an adopted token's payload:
// test_sessions.cpp). 100,000 nested arrays (200 KB, which a raised
// server.max_body_bytes lets through) once ended the daemon by stack overflow
// in a recursive wipe.
#include <catch2/catch.hpp>

#include "core/client_json.hpp"
#include "core/invalidate_request.hpp"
#include "core/session_request.hpp"

using namespace cltoken;

namespace {

constexpr std::size_t deep = 100000;

std::string nested(std::size_t levels, std::string_view inside = "\"pw\"") {
  return std::string(levels, '[') + std::string(inside) + std::string(levels, ']');
}

} // namespace

TEST_CASE("client JSON nested deeper than the cap is refused before parsing") {
  CHECK(json_depth_within(nested(max_client_json_depth), max_client_json_depth));
  CHECK_FALSE(json_depth_within(nested(max_client_json_depth + 1), max_client_json_depth));
  CHECK(json_depth_within(R"({"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[","b":"\"{{{{{{"})",
                          2)); // brackets in strings
  CHECK(json_depth_within(R"([[1],[2],{"a":[3]}])", 3));
  CHECK_FALSE(json_depth_within(R"([[1],[2],{"a":[3]}])", 2));
  CHECK(parse_client_json(nested(max_client_json_depth)).is_array());
  CHECK(parse_client_json(nested(max_client_json_depth + 1)).is_discarded());
  CHECK(parse_client_json(nested(deep)).is_discarded());
  CHECK(parse_client_json("not json").is_discarded());
}

TEST_CASE("wiping a document has no recursion: 100,000 nested arrays") {
  // nlohmann's parser is iterative: build the deep document with it, uncapped.
  auto j = nlohmann::json::parse(nested(deep, R"("secret-pw")"));
  wipe_json(j);
  const nlohmann::json* v = &j;
  while (v->is_array()) v = &(*v)[0];
  REQUIRE(v->is_string());
  CHECK(v->get_ref<const std::string&>().find("secret-pw") == std::string::npos);

  auto o = nlohmann::json::parse(R"({"username":"u","password":"secret-pw","x":[{"y":"secret-pw"}]})");
  wipe_json(o);
  CHECK(o.dump().find("secret-pw") == std::string::npos);
}

TEST_CASE("session and invalidate bodies of 100,000 nested arrays are a 400, "
          "not a crash") {
  std::string session = R"({"username":"u","password":)" + nested(deep) + "}";
  auto s = parse_session_request(session);
  CHECK(std::holds_alternative<std::string>(s));
  CHECK(session.empty());
  std::string invalidate = R"({"access_token":"t","x":)" + nested(deep) + "}";
  CHECK_FALSE(parse_invalidate_request(invalidate));
  CHECK(invalidate.empty());
}

TEST_CASE("invalidate bodies: exactly an access_token string") {
  std::string ok = R"({"access_token":"tok-secret"})";
  auto t = parse_invalidate_request(ok);
  REQUIRE(t);
  CHECK(t->equals("tok-secret"));
  CHECK(ok.empty());
  for (const char* bad : {R"({})", R"({"access_token":1})", R"([])", "not json", R"("access_token")"}) {
    INFO(bad);
    std::string b = bad;
    CHECK_FALSE(parse_invalidate_request(b));
  }
}

// The record inside a seal and the state file around the seals: what survives a restart,
// and how held (steady) times map to stored (wall) times and back.
#include <catch2/catch.hpp>

#include "core/store_generations.hpp"
#include "core/store_record.hpp"
#include "core/store_state_file.hpp"
#include "fake_clock.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

namespace {
StoredToken sample() {
  StoredToken t;
  t.credential = "backoffice";
  t.identity = std::string(64, 'a');
  t.access_token = Secret("eyJ.token.value");
  t.scope = "market:all";
  t.obtained_at = WallTime(1795000000123ms);
  t.expires_at = t.obtained_at + 2h;
  return t;
}
} // namespace

TEST_CASE("a record round-trips through its JSON form to the millisecond") {
  const StoredToken t = sample();
  std::string json = encode_record(t);
  std::string error;
  auto back = decode_record(json, error);
  REQUIRE(back);
  CHECK(back->credential == t.credential);
  CHECK(back->identity == t.identity);
  CHECK(back->access_token.equals(t.access_token));
  CHECK(back->token_type == "bearer");
  CHECK(back->scope == "market:all");
  CHECK(back->obtained_at == t.obtained_at);
  CHECK(back->expires_at == t.expires_at);
  wipe(json);
  CHECK(json.empty());
}

TEST_CASE("a malformed record is refused with a reason") {
  std::string error;
  CHECK_FALSE(decode_record("not json", error));
  CHECK(error == "the record is not a JSON object");
  CHECK_FALSE(decode_record("[]", error));
  std::string good = encode_record(sample());
  auto without = [&](const std::string& key) {
    std::string s = good;
    auto at = s.find("\"" + key + "\"");
    s.replace(at, key.size() + 2, "\"x" + key + "\"");
    return s;
  };
  for (const char* key : {"credential", "identity", "access_token", "token_type", "scope", "obtained_at_ms", "expires_at_ms"}) {
    INFO(key);
    CHECK_FALSE(decode_record(without(key), error));
    CHECK_THAT(error, Catch::Contains(key));
  }
  StoredToken backwards = sample();
  backwards.expires_at = backwards.obtained_at - 1s;
  CHECK_FALSE(decode_record(encode_record(backwards), error));
  StoredToken empty = sample();
  empty.access_token = Secret("");
  CHECK_FALSE(decode_record(encode_record(empty), error));
}

TEST_CASE("held and stored times map through the clock: a restart keeps the wall-clock expiry") {
  test::FakeClock before;
  CachedToken held;
  held.access_token = Secret("eyJ.token.value");
  held.scope = "market:all";
  held.obtained_at = before.now() - 30min;
  held.expires_at = held.obtained_at + 2h;
  held.lifetime = 2h;
  const StoredToken stored = to_stored(held, "backoffice", std::string(64, 'a'), before);
  CHECK(stored.obtained_at == before.wall_now() - 30min);
  CHECK(stored.expires_at == before.wall_now() + 90min);

  // Another process: its steady clock has another origin, its wall clock is 10 min later.
  test::FakeClock after;
  after.advance(10min);
  const CachedToken loaded = to_cached(stored, after);
  CHECK(loaded.expires_at - after.now() == 80min);
  CHECK(after.now() - loaded.obtained_at == 40min);
  CHECK(loaded.lifetime == 2h);
  CHECK(loaded.access_token.equals(held.access_token));
  CHECK(loaded.scope == "market:all");
}

TEST_CASE("the state file round-trips and refuses what is not one") {
  StateFile state;
  state.records.resize(2);
  state.records[0] = {"backoffice", std::string(64, 'a'), WallTime(1795007200000ms), std::string("\x00\x01sealed", 8)};
  state.records[1] = {"storefront-eu", std::string(64, 'b'), WallTime(1795014400000ms), "other"};
  state.key_sets.push_back({std::string(64, 'c'), WallTime(1795000000000ms), std::string("\x00keys", 5)});
  std::string error;
  const std::string text = render_state_file(state);
  auto back = parse_state_file(text, error);
  REQUIRE(back);
  REQUIRE(back->records.size() == 2);
  CHECK(back->records[0].credential == "backoffice");
  CHECK(back->records[0].identity == std::string(64, 'a'));
  CHECK(back->records[0].expires_at == WallTime(1795007200000ms));
  CHECK(back->records[0].sealed == std::string("\x00\x01sealed", 8));
  CHECK(back->records[1].sealed == "other");
  REQUIRE(back->key_sets.size() == 1);
  CHECK(back->key_sets[0].identity == std::string(64, 'c'));
  CHECK(back->key_sets[0].fetched_at == WallTime(1795000000000ms));
  CHECK(back->key_sets[0].sealed == std::string("\x00keys", 5));
  auto empty = parse_state_file(render_state_file({}), error);
  REQUIRE(empty);
  CHECK(empty->records.empty());
  CHECK(empty->key_sets.empty());
  // A file written before key sets were stored has no "key_sets": still a state file.
  auto older = parse_state_file(R"({"format":"cl-tokend state","version":1,"records":[]})", error);
  REQUIRE(older);
  CHECK(older->key_sets.empty());

  CHECK_FALSE(parse_state_file("", error));
  CHECK_FALSE(parse_state_file("\x01\x02garbage", error));
  CHECK_FALSE(parse_state_file(R"({"format":"something else","version":1,"records":[]})", error));
  CHECK_THAT(error, Catch::Contains("not a cl-tokend state file"));
  CHECK_FALSE(parse_state_file(R"({"format":"cl-tokend state","version":2,"records":[]})", error));
  CHECK_THAT(error, Catch::Contains("version 2"));
  CHECK_FALSE(parse_state_file(R"({"format":"cl-tokend state","version":1})", error));
  CHECK_FALSE(parse_state_file(
      R"({"format":"cl-tokend state","version":1,"records":[{"credential":"a","identity":"b","expires_at_ms":1,"sealed":"%%%"}]})",
      error));
  CHECK_THAT(error, Catch::Contains("not base64"));
  CHECK_FALSE(parse_state_file(R"({"format":"cl-tokend state","version":1,"records":[{"credential":"a"}]})", error));
  CHECK_THAT(error, Catch::Contains("record 1"));
  CHECK_FALSE(parse_state_file(R"({"format":"cl-tokend state","version":1,"records":[],"key_sets":[{"identity":"a"}]})", error));
  CHECK_THAT(error, Catch::Contains("key set 1"));
}

TEST_CASE("a record's generation travels sealed, and a record without one reads as before") {
  StoredToken t;
  t.credential = "backoffice";
  t.identity = std::string(64, 'a');
  t.access_token = Secret("eyJ.x.y");
  t.obtained_at = WallTime(1795000000000ms);
  t.expires_at = t.obtained_at + 2h;
  CHECK(encode_record(t).find("generation") == std::string::npos);
  t.generation = 42;
  std::string error;
  auto back = decode_record(encode_record(t), error);
  REQUIRE(back);
  CHECK(back->generation == 42);
  CHECK_FALSE(decode_record(
      R"({"credential":"a","identity":"b","access_token":"t","token_type":"bearer","scope":"","obtained_at_ms":1,"expires_at_ms":2,"generation":-1})",
      error));
  CHECK_THAT(error, Catch::Contains("generation"));
}

TEST_CASE("the generation anchor round-trips and tells a rolled-back record") {
  Generations g{{"backoffice", 7}, {"storefront-eu", 1}};
  std::string error;
  auto back = parse_generations(render_generations(g), error);
  REQUIRE(back);
  CHECK(*back == g);
  CHECK_FALSE(parse_generations("{}", error));
  CHECK_FALSE(parse_generations(R"({"format":"cl-tokend generations","version":1,"generations":{"a":"x"}})", error));

  CHECK_FALSE(rolled_back(3, std::nullopt)); // nothing anchored: taken (first start since boot)
  CHECK_FALSE(rolled_back(7, 7));            // the record last saved
  CHECK_FALSE(rolled_back(8, 7));            // saved, then a crash before the anchor was written
  auto why = rolled_back(6, 7);              // saved or removed since: an older copy
  REQUIRE(why);
  CHECK_THAT(*why, Catch::Contains("put back from an older copy"));
}

// The session journal's format and fold (core/session_journal.hpp), without a file.
#include <catch2/catch.hpp>

#include "core/session_journal.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

namespace {

const std::string id_a(64, 'a');
const std::string id_b(64, 'b');
const std::string identity(64, 'c');

JournalPut put_a() { return JournalPut{id_a, "shop", identity, WallTime(1795000000s), std::string("\x00\x01sealed\xff", 9)}; }

std::string without_newline(std::string line) {
  REQUIRE(line.back() == '\n');
  line.pop_back();
  return line;
}

} // namespace

TEST_CASE("journal: the header is recognised, and another format or version is refused with a reason") {
  const std::string header = without_newline(render_journal_header());
  CHECK(header == R"({"format":"cl-tokend sessions","version":1})");
  CHECK_FALSE(journal_header_error(header));
  CHECK(journal_header_error(R"({"format":"cl-tokend sessions","version":2})")->find("version 2") != std::string::npos);
  CHECK(journal_header_error(R"({"format":"cl-tokend state","version":1})"));
  CHECK(journal_header_error(R"({"format":"cl-tokend sessions"})"));
  CHECK(journal_header_error("hello"));
  CHECK(journal_header_error(""));
}

TEST_CASE("journal: put and del lines round trip") {
  std::string error;
  const std::string line = render_journal_put(put_a());
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);
  auto entry = parse_journal_line(without_newline(line), error);
  REQUIRE(entry);
  REQUIRE(std::holds_alternative<JournalPut>(*entry));
  const auto& p = std::get<JournalPut>(*entry);
  CHECK(p.id == id_a);
  CHECK(p.credential == "shop");
  CHECK(p.identity == identity);
  CHECK(p.expires_at == WallTime(1795000000s));
  CHECK(p.sealed == put_a().sealed);

  auto del = parse_journal_line(without_newline(render_journal_del(id_b)), error);
  REQUIRE(del);
  REQUIRE(std::holds_alternative<JournalDel>(*del));
  CHECK(std::get<JournalDel>(*del).id == id_b);
}

TEST_CASE("journal: malformed lines are refused with a reason") {
  const std::string sealed = R"("sealed":"AAEC")";
  for (std::string line : {
           std::string(""),
           std::string("{"),
           std::string("[]"),
           std::string(R"({"get":"x"})"),
           R"({"del":")" + std::string(63, 'a') + R"("})",
           R"({"del":")" + std::string(64, 'A') + R"("})",
           R"({"del":")" + id_a + R"(","extra":1})",
           R"({"put":")" + id_a + R"(","credential":"shop","identity":")" + identity + R"(","expires_at_ms":1})",
           R"({"put":")" + id_a + R"(","credential":"shop","identity":")" + identity + R"(","expires_at_ms":"1",)" + sealed + "}",
           R"({"put":")" + id_a + R"(","credential":"","identity":")" + identity + R"(","expires_at_ms":1,)" + sealed + "}",
           R"({"put":")" + id_a + R"(","identity":")" + identity + R"(","expires_at_ms":1,)" + sealed + "}",
           R"({"put":")" + id_a + R"(","credential":"shop","identity":"cc","expires_at_ms":1,)" + sealed + "}",
           R"({"put":"zz","credential":"shop","identity":")" + identity + R"(","expires_at_ms":1,)" + sealed + "}",
           R"({"put":")" + id_a + R"(","credential":"shop","identity":")" + identity + R"(","expires_at_ms":1,"sealed":"%%%"})",
           R"({"put":")" + id_a + R"(","credential":"shop","identity":")" + identity + R"(","expires_at_ms":1,"sealed":""})",
           std::string(max_journal_line + 1, ' '),
       }) {
    std::string error;
    INFO(line.substr(0, 200));
    CHECK_FALSE(parse_journal_line(line, error));
    CHECK_FALSE(error.empty());
  }
  std::string error; // the well-formed variant of the lines above parses
  CHECK(parse_journal_line(R"({"put":")" + id_a + R"(","credential":"shop","identity":")" + identity + R"(","expires_at_ms":1,)" +
                               sealed + "}",
                           error));
}

TEST_CASE("journal: the last line about a session wins, and dead lines are counted") {
  JournalIndex index;
  index.put(id_a, 10, 100, WallTime(1s));
  index.put(id_b, 111, 100, WallTime(2s));
  index.put(id_a, 212, 90, WallTime(3s)); // a refresh: replaces the first put
  REQUIRE(index.live().size() == 2);
  CHECK(index.live().at(id_a).offset == 212);
  CHECK(index.live().at(id_a).length == 90);
  CHECK(index.live().at(id_a).expires_at == WallTime(3s));
  index.del(id_b);
  index.malformed();
  index.del(std::string(64, 'e')); // never put: still a line
  CHECK(index.live().size() == 1);
  CHECK(index.lines() == 6);
  CHECK(index.dead() == 5);
  index.put(id_b, 400, 10, WallTime(4s)); // a put after a del brings it back
  CHECK(index.live().contains(id_b));
  index.forget(id_b);
  CHECK_FALSE(index.live().contains(id_b));
  CHECK(index.dead() == 6);
}

TEST_CASE("journal: compaction is due once dead lines outnumber live ones by the floor") {
  JournalIndex index;
  for (int i = 0; i < 10; ++i) index.put(std::to_string(i), 0, 1, WallTime(1s));
  for (int i = 0; i < 15; ++i) index.malformed();
  CHECK(index.dead() == 15);
  CHECK(index.compaction_due(4));
  CHECK_FALSE(index.compaction_due(5));
  CHECK_FALSE(index.compaction_due()); // the default floor keeps small journals as they are
  for (std::size_t i = 0; i < journal_compaction_floor; ++i) index.malformed();
  CHECK(index.compaction_due());
}

TEST_CASE("journal: a session lasts as long as its refresh token, else its access token") {
  StoredSession s;
  s.obtained_at = WallTime(1795000000s);
  s.expires_at = s.obtained_at + 2h;
  CHECK(stored_session_expiry(s, 14 * 24h) == s.expires_at);
  s.refresh_token = Secret("refresh");
  CHECK(stored_session_expiry(s, 14 * 24h) == s.obtained_at + 14 * 24h);
  CHECK(stored_session_expiry(s, 60s) == s.obtained_at + 60s);
}

TEST_CASE("journal: the size bound grows with max_sessions and covers a journal due for compaction") {
  CHECK(max_journal_size(100000) > max_journal_size(1000));
  // 100,000 live sessions of 2.6 KB, as many dead lines and the floor, fit with room to spare.
  CHECK(max_journal_size(100000) > (2 * 100000 + journal_compaction_floor) * 2600ULL);
}

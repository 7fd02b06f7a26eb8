#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "core/access_log.hpp"
#include "core/client_usage.hpp"
#include "core/documents.hpp"
#include "fake_clock.hpp"

using namespace cltoken;
using cltoken::test::FakeClock;
using namespace std::chrono_literals;

namespace {

PeerIdentity peer(uid_t uid, std::optional<std::string> unit = std::nullopt) {
  PeerIdentity p;
  p.uid = uid;
  p.gid = uid;
  p.pid = 100 + static_cast<pid_t>(uid);
  if (unit) p.unit = SystemdUnit{*unit, {"system.slice"}};
  return p;
}

} // namespace

TEST_CASE("client usage: one row per unit (whatever its uid) or per uid, per credential") {
  FakeClock clock;
  ClientUsage usage(16, 1h);
  usage.record(peer(61000, "storefront.service"), "storefront-eu", false, clock.now());
  clock.advance(1s);
  usage.record(peer(61001, "storefront.service"), "storefront-eu", false, clock.now()); // DynamicUser=: new uid
  usage.record(peer(1001), "storefront-eu", true, clock.now());
  usage.record(peer(1001), "backoffice", false, clock.now());
  auto rows = usage.rows(clock.now());
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].credential == "backoffice"); // most recent first
  CHECK(rows[1].credential == "storefront-eu");
  CHECK(rows[1].uid == 1001);
  CHECK(rows[1].refused == 1);
  CHECK(rows[2].unit == "storefront.service");
  CHECK(rows[2].uid == 61001);
  CHECK(rows[2].requests == 2);
  CHECK(rows[2].first_seen + 1s == rows[2].last_seen);
}

TEST_CASE("client usage: rows unused for the window are gone") {
  FakeClock clock;
  ClientUsage usage(16, 1h);
  usage.record(peer(1), "a", false, clock.now());
  clock.advance(30min);
  usage.record(peer(2), "a", false, clock.now());
  clock.advance(30min);
  auto rows = usage.rows(clock.now());
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].uid == 2);
  usage.record(peer(3), "a", false, clock.now()); // expires the old row for good
  CHECK(usage.size() == 2);
  CHECK(usage.evicted() == 0);
}

TEST_CASE("client usage: a flood of peers never grows the table past its capacity") {
  FakeClock clock;
  ClientUsage usage(64, 1h);
  usage.record(peer(1000, "storefront.service"), "storefront-eu", false, clock.now());
  for (uid_t uid = 20000; uid < 30000; ++uid) {
    clock.advance(1ms);
    usage.record(peer(uid), "storefront-eu", true, clock.now());
    REQUIRE(usage.size() <= 64);
  }
  CHECK(usage.size() == 64);
  CHECK(usage.evicted() == 10000 + 1 - 64);
  // The rows kept are the most recent; a returning client takes a row back.
  usage.record(peer(1000, "storefront.service"), "storefront-eu", false, clock.now());
  auto rows = usage.rows(clock.now());
  REQUIRE(rows.size() == 64);
  CHECK(rows.front().unit == "storefront.service");
  CHECK(rows.front().requests == 1);
  CHECK(rows.back().uid == 29937);
}

TEST_CASE("client usage: the document names each principal once, with times and counts") {
  FakeClock clock;
  ClientUsage usage(8, 1h);
  usage.record(peer(1001), "backoffice", false, clock.now());
  usage.record(peer(61000, "storefront.service"), "storefront-eu", true, clock.now());
  usage.record(peer(4321), "backoffice", false, clock.now());
  auto names = [](uid_t uid) -> std::optional<std::string> {
    if (uid == 1001) return "erp";
    return std::nullopt;
  };
  auto doc = nlohmann::json::parse(clients_document(usage, clock.now(), clock.wall_now(), names));
  CHECK(doc["window_s"] == 3600);
  CHECK(doc["capacity"] == 8);
  CHECK(doc["evicted"] == 0);
  REQUIRE(doc["clients"].size() == 3);
  CHECK(doc["clients"][0]["principal"] == "uid:4321");
  CHECK(doc["clients"][0]["user"].is_null());
  CHECK(doc["clients"][1]["principal"] == "unit:storefront.service");
  CHECK(doc["clients"][1]["unit"] == "storefront.service");
  CHECK(doc["clients"][1]["refused"] == 1);
  CHECK(doc["clients"][2]["principal"] == "user:erp");
  CHECK(doc["clients"][2]["unit"].is_null());
  CHECK(doc["clients"][2]["last_seen"] == rfc3339(clock.wall_now()));
}

TEST_CASE("access log: outcome words and the line, never more than the peer and the credential") {
  CHECK(access_outcome(200) == "served");
  CHECK(access_outcome(201) == "served");
  CHECK(access_outcome(403) == "forbidden");
  CHECK(access_outcome(503) == "unavailable");
  CHECK(access_outcome(429) == "rate_limited");
  CHECK(access_outcome(410) == "not_found");
  CHECK(access_outcome(400) == "bad_request");
  CHECK(access_outcome(500) == "failed");
  CHECK(access_line("backoffice", "token", peer(1001, "erp.service"), 200) ==
        "credential backoffice: access route=token uid=1001 gid=1001 pid=1101 unit=erp.service outcome=served status=200");
  CHECK(access_line("backoffice", "token", peer(1001), 503) ==
        "credential backoffice: access route=token uid=1001 gid=1001 pid=1101 unit=- outcome=unavailable status=503");
}

TEST_CASE("access log: a tenth of the lines per uid, the limit for all, and a count of what was left out") {
  FakeClock clock;
  AccessLog log(100); // 10 a minute per uid
  unsigned flood = 0, other = 0;
  for (int i = 0; i < 1000; ++i) flood += log.admit(1, clock.now()).log ? 1 : 0;
  CHECK(flood == 10);
  for (int i = 0; i < 5; ++i) other += log.admit(2, clock.now()).log ? 1 : 0;
  CHECK(other == 5); // the flood did not take uid 2's lines
  // Many uids: the total stays within the limit.
  unsigned total = flood + other;
  for (uid_t uid = 10; uid < 200; ++uid)
    for (int i = 0; i < 10; ++i) total += log.admit(uid, clock.now()).log ? 1 : 0;
  CHECK(total == 100);
  // The next minute says how many of uid 1's were left out, and lines flow again.
  clock.advance(60s);
  auto v = log.admit(1, clock.now());
  CHECK(v.log);
  REQUIRE(v.notes.size() == 2);
  CHECK(v.notes[0] == "990 access log lines of uid 1 were not logged (log.access_per_minute)");
  CHECK(v.notes[1] == "1815 access log lines were not logged (log.access_per_minute)");
}

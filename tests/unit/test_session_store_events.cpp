// The customer-session core with sessions in a store (core/session_scheduler.hpp, the
// store's events) in virtual time: what it asks of a shared store and what it does with
// the answers. Each case fails if the core skips the step it checks.
#include <catch2/catch.hpp>

#include "session_harness.hpp"

using namespace cltoken;
using namespace cltoken::test;
using namespace std::chrono_literals;
using Kind = SessionAnswer::Kind;

namespace {

Config with_store(const char* backend) {
  Config c = sessions_config(100);
  c.store.backend = backend;
  return c;
}

/// A login on a daemon sharing its store: the 201 comes once the store answered the save.
SessionKey login_shared(SessionHarness& h, uid_t owner, const std::string& access = "access-1",
                        const std::string& refresh = "refresh-1") {
  auto started =
      h.core.create(h.now(), h.shop(), owner, R"({"username":"ann@example.test","password":"pw"})", h.clock.now() + 5s);
  h.collect();
  REQUIRE_FALSE(started.answer);
  h.answer_request(customer_grant(access, 600s, refresh));
  REQUIRE_FALSE(h.outcome(started)); // not before the fleet can read it
  REQUIRE(h.saves.size() == 1);
  auto save = std::move(h.saves.front());
  h.saves.clear();
  CHECK(save.op == started.op);
  h.core.saved(h.now(), save.key, save.record, SessionSaved::stored, save.op);
  auto a = h.outcome(started);
  REQUIRE(a);
  REQUIRE(a->kind == Kind::created);
  CHECK(session_key(nlohmann::json::parse(a->document).at("session").get<std::string>()) == save.key);
  return save.key;
}

SessionRecord record(const SessionHarness& h, uid_t owner, const std::string& access, std::uint64_t generation) {
  SessionRecord r;
  r.credential = "shop";
  r.owner = owner;
  r.access_token = Secret(access);
  r.refresh_token = Secret("refresh-" + access);
  r.owner_id = "cust-1";
  r.obtained = h.clock.now();
  r.expires_at = h.clock.now() + 600s;
  r.refresh_at = h.clock.now() + 450s;
  r.generation = generation;
  return r;
}

SessionKey key_of(char c) {
  SessionKey k{};
  k.fill(static_cast<unsigned char>(c));
  return k;
}

} // namespace

TEST_CASE("a read of a session held elsewhere asks the store once for any number of readers") {
  SessionHarness h(with_store("redis"));
  const SessionKey key = key_of('a');
  auto r1 = h.core.read(h.now(), "shop", 1000, key, std::nullopt, h.clock.now() + 5s);
  auto r2 = h.core.read(h.now(), "shop", 1000, key, std::nullopt, h.clock.now() + 5s);
  h.collect();
  REQUIRE(h.finds.size() == 1);
  CHECK_FALSE(h.outcome(r1));
  h.core.found(h.now(), h.finds.front().id, SessionLookup{SessionLookup::Kind::found, record(h, 1000, "access-7", 3)});
  for (const auto& r : {r1, r2}) {
    auto a = h.outcome(r);
    REQUIRE(a);
    REQUIRE(a->kind == Kind::served);
    CHECK(access_token_of(*a) == "access-7");
  }
  // Held now: the next read asks nothing.
  h.finds.clear();
  auto r3 = h.core.read(h.now(), "shop", 1000, key, std::nullopt, h.clock.now() + 5s);
  CHECK(h.outcome(r3)->kind == Kind::served);
  CHECK(h.finds.empty());
  CHECK(h.core.view().from_store == 1);
}

TEST_CASE("a store that cannot be reached is 503, not 'no such session'; another uid's session is 404") {
  SessionHarness h(with_store("redis"));
  auto r1 = h.core.read(h.now(), "shop", 1000, key_of('b'), std::nullopt, h.clock.now() + 5s);
  h.collect();
  REQUIRE(h.finds.size() == 1);
  h.core.found(h.now(), h.finds.front().id, SessionLookup{SessionLookup::Kind::unreachable, std::nullopt});
  auto a1 = h.outcome(r1);
  REQUIRE(a1);
  CHECK(a1->kind == Kind::unavailable);

  auto r2 = h.core.read(h.now(), "shop", 2000, key_of('c'), std::nullopt, h.clock.now() + 5s);
  h.collect();
  REQUIRE(h.finds.size() == 2);
  h.core.found(h.now(), h.finds.back().id, SessionLookup{SessionLookup::Kind::found, record(h, 1000, "access-8", 1)});
  auto a2 = h.outcome(r2);
  REQUIRE(a2);
  CHECK(a2->kind == Kind::unknown);

  // A look-up the store never answers: the reader is told to come back at its deadline.
  auto r3 = h.core.read(h.now(), "shop", 1000, key_of('d'), std::nullopt, h.clock.now() + 2s);
  h.run_until(h.clock.now() + 3s);
  auto a3 = h.outcome(r3);
  REQUIRE(a3);
  CHECK(a3->kind == Kind::unavailable);
}

TEST_CASE("look-ups in the store are bounded per uid, so one uid guessing leaves others theirs") {
  SessionHarness h(with_store("redis"));
  for (std::size_t i = 0; i < SessionScheduler::max_finds_per_peer; ++i) {
    SessionKey k = key_of('x');
    k[0] = static_cast<unsigned char>(i);
    auto r = h.core.read(h.now(), "shop", 7, k, std::nullopt, h.clock.now() + 5s);
    CHECK_FALSE(r.answer);
  }
  auto over = h.core.read(h.now(), "shop", 7, key_of('y'), std::nullopt, h.clock.now() + 5s);
  REQUIRE(over.answer);
  CHECK(over.answer->kind == Kind::unavailable);
  auto other = h.core.read(h.now(), "shop", 8, key_of('z'), std::nullopt, h.clock.now() + 5s);
  CHECK_FALSE(other.answer);
  h.collect();
  CHECK(h.finds.size() == SessionScheduler::max_finds_per_peer + 1);
}

TEST_CASE("a due session asks the fleet first, and takes another daemon's refresh without a request") {
  SessionHarness h(with_store("redis"));
  const SessionKey key = login_shared(h, 1000);
  h.run_until(h.clock.now() + 500s); // past the refresh point, 100 s left
  auto r = h.core.read(h.now(), "shop", 1000, key, 300s, h.clock.now() + 5s);
  h.collect();
  REQUIRE(h.asks.size() == 1);
  CHECK(h.asks.front().generation == 1);
  CHECK(h.requests.empty()); // no request before the fleet answered
  h.core.fleet_answered(h.now(), h.asks.front().id, FleetRefresh{FleetRefresh::Kind::newer, record(h, 1000, "access-2", 2)});
  auto a = h.outcome(r);
  REQUIRE(a);
  REQUIRE(a->kind == Kind::served);
  CHECK(access_token_of(*a) == "access-2");
  CHECK(h.requests.empty());
  CHECK(h.core.view().refreshes.at("fleet") == 1);
  CHECK(h.saves.empty()); // the store has it already
}

TEST_CASE("the fleet's go refreshes here; a save that meets a logout elsewhere revokes what the refresh brought") {
  SessionHarness h(with_store("redis"));
  const SessionKey key = login_shared(h, 1000);
  h.run_until(h.clock.now() + 500s);
  auto r = h.core.read(h.now(), "shop", 1000, key, 300s, h.clock.now() + 5s);
  h.collect();
  REQUIRE(h.asks.size() == 1);
  h.core.fleet_answered(h.now(), h.asks.front().id, FleetRefresh{});
  h.collect();
  REQUIRE(h.requests.size() == 1);
  CHECK(h.requests.front().request.refresh_token->reveal() == "refresh-1");
  h.answer_request(customer_grant("access-2", 600s, "refresh-2"));
  CHECK(access_token_of(*h.outcome(r)) == "access-2");
  REQUIRE(h.saves.size() == 1);
  CHECK(h.saves.front().record.generation == 2);
  h.core.saved(h.now(), h.saves.front().key, h.saves.front().record, SessionSaved::ended);
  h.collect();
  REQUIRE(h.revokes.size() == 1);
  std::vector<std::string> revoked;
  for (const auto& t : h.revokes.front().tokens) revoked.emplace_back(t.reveal());
  CHECK(revoked == std::vector<std::string>{"access-2", "refresh-2"});
  auto gone = h.core.read(h.now(), "shop", 1000, key, std::nullopt, h.clock.now() + 5s);
  h.collect();
  // Not held any more: looked for in the store again (where it is ended).
  CHECK_FALSE(gone.answer);
  CHECK(h.finds.size() == 1);
}

TEST_CASE("a logout ends the session in the shared store first, then revokes the newest tokens and its own") {
  SessionHarness h(with_store("redis"));
  const SessionKey key = login_shared(h, 1000);
  auto e = h.core.end(h.now(), h.shop(), 1000, key, h.clock.now() + 5s);
  h.collect();
  REQUIRE(h.ends.size() == 1);
  CHECK(h.revokes.empty()); // not before the end mark
  h.core.store_ended(h.now(), h.ends.front().id, record(h, 1000, "access-9", 4));
  h.collect();
  REQUIRE(h.revokes.size() == 1);
  std::vector<std::string> revoked;
  for (const auto& t : h.revokes.front().tokens) revoked.emplace_back(t.reveal());
  CHECK(revoked == std::vector<std::string>{"access-9", "refresh-access-9", "access-1", "refresh-1"});
  h.core.revoked(h.now(), h.revokes.front().id, std::nullopt);
  auto a = h.outcome(e);
  REQUIRE(a);
  CHECK(a->kind == Kind::ended);
}

TEST_CASE("sessions ended on another daemon are dropped here") {
  SessionHarness h(with_store("redis"));
  const SessionKey key = login_shared(h, 1000);
  h.core.ended_elsewhere(h.now(), {key});
  CHECK(h.core.table().size() == 0);
  CHECK(h.core.view().ended_elsewhere == 1);
}

TEST_CASE("a file store forgets what memory evicts and what a logout ends, and takes back what it kept") {
  Config c = with_store("file");
  c.customers.max_sessions = 1;
  SessionHarness h(c);
  const std::string first = h.login(1000, 600s, "access-1");
  REQUIRE(h.saves.size() == 1); // answered at once: a file is not shared
  CHECK(h.saves.front().op == 0);
  const std::string second = h.login(1000, 600s, "access-2");
  h.collect();
  REQUIRE(h.drops.size() == 1); // the first, evicted over max_sessions
  CHECK(h.drops.front().key == session_key(first));
  CHECK_FALSE(h.drops.front().dead);
  auto e = h.core.end(h.now(), h.shop(), 1000, session_key(second), h.clock.now() + 5s);
  h.collect();
  REQUIRE(h.revokes.size() == 1);
  h.core.revoked(h.now(), h.revokes.front().id, std::nullopt);
  h.collect();
  REQUIRE(h.drops.size() == 2);
  CHECK(h.drops.back().dead);
  CHECK(h.outcome(e)->kind == Kind::ended);
  CHECK(h.asks.empty());
  CHECK(h.finds.empty());

  SessionHarness restarted(c);
  restarted.core.loaded(restarted.now(), {KeptSession{key_of('k'), record(restarted, 1000, "access-5", 2)}});
  auto r = restarted.core.read(restarted.now(), "shop", 1000, key_of('k'), std::nullopt, restarted.clock.now() + 5s);
  REQUIRE(r.answer);
  CHECK(access_token_of(*r.answer) == "access-5");
  restarted.collect();
  CHECK(restarted.requests.empty());
}

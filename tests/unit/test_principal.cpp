#include <catch2/catch.hpp>

#include <map>

#include "core/log_throttle.hpp"
#include "core/principal.hpp"
#include "core/request_slots.hpp"

using namespace cltoken;

namespace {

class Names final : public NameResolver {
public:
  std::optional<uid_t> user(const std::string& name) const override {
    auto it = users.find(name);
    return it == users.end() ? std::nullopt : std::optional<uid_t>(it->second);
  }
  std::optional<gid_t> group(const std::string& name) const override {
    auto it = groups.find(name);
    return it == groups.end() ? std::nullopt : std::optional<gid_t>(it->second);
  }
  std::map<std::string, uid_t> users{{"erp", 1001}, {"root", 0}};
  std::map<std::string, gid_t> groups{{"www-data", 33}, {"cl-integration", 990}};
};

Principal parse(const std::string& text) {
  Names names;
  std::string error;
  auto p = parse_principal(text, names, error);
  INFO(error);
  REQUIRE(p);
  return *p;
}

PeerIdentity peer(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
  PeerIdentity p;
  p.uid = uid;
  p.gid = gid;
  p.pid = 4242;
  p.groups = std::move(groups);
  return p;
}

} // namespace

TEST_CASE("each kind of principal matches exactly the peers it names") {
  const auto erp = peer(1001, 1001);
  const auto web = peer(2000, 33);
  const auto web_by_supplementary = peer(2001, 2001, {2001, 33});
  const auto stranger = peer(65534, 65534, {65534});

  CHECK(parse("uid:1001").matches(erp));
  CHECK_FALSE(parse("uid:1001").matches(web));
  CHECK(parse("user:erp").matches(erp));
  CHECK_FALSE(parse("user:erp").matches(stranger));
  // A uid principal never matches by group, nor a gid principal by uid.
  CHECK_FALSE(parse("uid:33").matches(web));
  CHECK_FALSE(parse("gid:1001").matches(peer(1001, 100)));

  CHECK(parse("gid:33").matches(web));                          // primary group
  CHECK(parse("group:www-data").matches(web_by_supplementary)); // supplementary group
  CHECK_FALSE(parse("group:www-data").matches(stranger));
  CHECK(parse("*").matches(stranger));

  const std::vector<Principal> allow{parse("user:erp"), parse("group:www-data")};
  CHECK(allowed(allow, erp));
  CHECK(allowed(allow, web_by_supplementary));
  CHECK_FALSE(allowed(allow, stranger));
  CHECK_FALSE(allowed({}, erp)); // an empty list admits nobody
}

TEST_CASE("root is not special: it needs a principal like everyone else") {
  CHECK_FALSE(allowed({parse("user:erp")}, peer(0, 0)));
  CHECK(allowed({parse("uid:0")}, peer(0, 0)));
}

TEST_CASE("malformed principals are refused with a sentence") {
  Names names;
  for (const char* bad : {"uid:", "uid:-1", "uid:12a", "uid:99999999999", "gid: 5", "user:", "group:nope", "user:nobody-here",
                          "root", "**", "", "uid:1:2", "host:x"}) {
    std::string error;
    INFO(bad);
    CHECK_FALSE(parse_principal(bad, names, error));
    CHECK_FALSE(error.empty());
  }
}

TEST_CASE("names resolve when parsed, so a reload picks up a changed user database") {
  Names names;
  std::string error;
  auto before = parse_principal("user:erp", names, error);
  names.users["erp"] = 1500;
  auto after = parse_principal("user:erp", names, error);
  REQUIRE(before);
  REQUIRE(after);
  CHECK(before->matches(peer(1001, 1)));
  CHECK(after->matches(peer(1500, 1)));
  CHECK_FALSE(after->matches(peer(1001, 1)));
}

TEST_CASE("a log throttle lets a burst through per window and counts the rest") {
  LogThrottle t(3, Seconds(60));
  const SteadyTime t0{};
  int logged = 0;
  for (int i = 0; i < 100; ++i) logged += t.admit(t0 + Seconds(1)).log ? 1 : 0;
  CHECK(logged == 3);
  auto next = t.admit(t0 + Seconds(61)); // a new window: reports the 97 left out
  CHECK(next.log);
  CHECK(next.suppressed == 97);
  CHECK(t.admit(t0 + Seconds(62)).suppressed == 0);
}

TEST_CASE("a per-uid log throttle: one uid's flood does not silence another uid") {
  PeerLogThrottle t(3, Seconds(60));
  const SteadyTime t0{};
  for (int i = 0; i < 1000; ++i) (void)t.admit(1000, t0 + Seconds(1));
  CHECK(t.admit(1001, t0 + Seconds(2)).log); // another uid's first denial is logged
  CHECK_FALSE(t.admit(1000, t0 + Seconds(2)).log);
  auto next = t.admit(1000, t0 + Seconds(61));
  CHECK(next.log);
  CHECK(next.suppressed == 998);
  // Many uids: the quiet ones are forgotten, so the map stays small.
  for (uid_t u = 2000; u < 3000; ++u) (void)t.admit(u, t0 + Seconds(200 + (u - 2000)));
  CHECK(t.tracked() <= 258);
}

TEST_CASE("request slots cap requests in progress per uid") {
  RequestSlots slots(2);
  auto a1 = slots.acquire(1000);
  auto a2 = slots.acquire(1000);
  CHECK(a1);
  CHECK(a2);
  CHECK_FALSE(slots.acquire(1000)); // a third request of the same uid
  CHECK(slots.acquire(1001));       // another uid is not affected
  CHECK(slots.in_progress(1000) == 2);
  a1.reset();
  CHECK(slots.in_progress(1000) == 1);
  CHECK(slots.acquire(1000));
  slots.set_limit(0); // 0: no cap
  std::vector<RequestSlots::Slot> many;
  for (int i = 0; i < 50; ++i) many.push_back(*slots.acquire(7));
  CHECK(slots.in_progress(7) == 50);
  many.clear();
  CHECK(slots.in_progress(7) == 0);
}

TEST_CASE("a slot may outlive its RequestSlots (a connection frame destroyed at shutdown)") {
  std::optional<RequestSlots::Slot> held;
  {
    RequestSlots slots(1);
    auto slot = slots.acquire(5);
    REQUIRE(slot);
    held.emplace(std::move(*slot));
  }
  held.reset(); // must not touch freed memory (run under the asan preset to see it)
  SUCCEED("released after the owner was destroyed");
}

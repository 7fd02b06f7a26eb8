#include <catch2/catch.hpp>

#include <map>

#include "core/principal.hpp"
#include "core/systemd_unit.hpp"

using namespace cltoken;

namespace {

SystemdUnit unit_of(std::string_view path) {
  auto u = unit_of_cgroup_path(path);
  INFO(path);
  REQUIRE(u);
  return *u;
}

using Slices = std::vector<std::string>;

class NoNames final : public NameResolver {
public:
  std::optional<uid_t> user(const std::string&) const override { return std::nullopt; }
  std::optional<gid_t> group(const std::string&) const override { return std::nullopt; }
};

Principal parse(const std::string& text) {
  NoNames names;
  std::string error;
  auto p = parse_principal(text, names, error);
  INFO(text << ": " << error);
  REQUIRE(p);
  return *p;
}

std::string refusal(const std::string& text) {
  NoNames names;
  std::string error;
  auto p = parse_principal(text, names, error);
  INFO(text);
  REQUIRE_FALSE(p);
  return error;
}

PeerIdentity in_unit(std::optional<SystemdUnit> unit, uid_t uid = 1001) {
  PeerIdentity p;
  p.uid = uid;
  p.gid = uid;
  p.pid = 77;
  p.unit = std::move(unit);
  return p;
}

} // namespace

TEST_CASE("cgroup path: a system service and its slice") {
  auto u = unit_of("/system.slice/storefront.service");
  CHECK(u.name == "storefront.service");
  CHECK(u.slices == Slices{"system.slice"});
}

TEST_CASE("cgroup path: nested slices are all listed, outermost first") {
  auto u = unit_of("/shop.slice/shop-eu.slice/shop-eu-web.slice/storefront@eu.service");
  CHECK(u.name == "storefront@eu.service");
  CHECK(u.slices == Slices{"shop.slice", "shop-eu.slice", "shop-eu-web.slice"});
}

TEST_CASE("cgroup path: a unit's own subtree (Delegate=, a container) does not change the unit") {
  CHECK(unit_of("/system.slice/docker-4f2a.scope/init.scope").name == "docker-4f2a.scope");
  CHECK(unit_of("/system.slice/worker.service/sub/deeper").name == "worker.service");
  // A container's own systemd names its units below the host's unit: still the host's.
  auto c = unit_of("/machine.slice/libpod-9c1e.scope/container/system.slice/storefront.service");
  CHECK(c.name == "libpod-9c1e.scope");
  CHECK(c.slices == Slices{"machine.slice"});
}

TEST_CASE("cgroup path: a user's services are their user manager's unit, whatever they are called") {
  // uid 1000 can start a "storefront.service" of its own: it must not pass for the system's.
  auto u = unit_of("/user.slice/user-1000.slice/user@1000.service/app.slice/storefront.service");
  CHECK(u.name == "user@1000.service");
  CHECK(u.slices == Slices{"user.slice", "user-1000.slice"});
  CHECK(unit_of("/user.slice/user-1000.slice/session-4.scope").name == "session-4.scope");
}

TEST_CASE("cgroup path: escaped names") {
  // systemd puts "_" before a cgroup name that could be taken for a kernel file.
  CHECK(unit_of("/system.slice/_cpu.service").name == "cpu.service");
  CHECK(unit_of("/system.slice/__private.service").name == "_private.service");
  CHECK(unit_of("/_cgroup.slice/x.service").slices == Slices{"cgroup.slice"});
  // Unit-name escapes (\x2d for a '-' that is not a separator) stay as systemctl shows them.
  CHECK(unit_of("/system.slice/system-getty.slice/getty@tty\\x2d1.service").name == "getty@tty\\x2d1.service");
}

TEST_CASE("cgroup path: nothing to identify") {
  CHECK_FALSE(unit_of_cgroup_path("/"));
  CHECK_FALSE(unit_of_cgroup_path(""));
  CHECK_FALSE(unit_of_cgroup_path("system.slice/a.service")); // not absolute
  CHECK_FALSE(unit_of_cgroup_path("/system.slice"));          // right in a slice
  CHECK_FALSE(unit_of_cgroup_path("/system.slice/"));
  CHECK_FALSE(unit_of_cgroup_path("/docker/4f2a")); // not systemd's (cgroupfs driver)
  CHECK_FALSE(unit_of_cgroup_path("/system.slice/bad name.service"));
  // The reader is in a cgroup namespace and the peer outside it: the kernel shows "..".
  CHECK_FALSE(unit_of_cgroup_path("/../../system.slice/storefront.service"));
  CHECK_FALSE(unit_of_cgroup_path("/system.slice/../x.service"));
}

TEST_CASE("/proc/PID/cgroup: only the unified hierarchy's line counts") {
  CHECK(unit_of_proc_cgroup("0::/system.slice/storefront.service\n")->name == "storefront.service");
  CHECK_FALSE(unit_of_proc_cgroup("0::/\n"));
  // Hybrid: the v1 name=systemd line is not read, the 0:: line is.
  CHECK(unit_of_proc_cgroup("12:name=systemd:/system.slice/a.service\n1:cpu:/\n0::/system.slice/b.service\n")->name ==
        "b.service");
  // cgroup v1 only: no unit.
  CHECK_FALSE(unit_of_proc_cgroup("12:name=systemd:/system.slice/a.service\n1:cpu:/\n"));
  CHECK_FALSE(unit_of_proc_cgroup(""));
}

TEST_CASE("unit globs: * and ? only, anchored at both ends") {
  CHECK(unit_glob_match("export-*.service", "export-nightly.service"));
  CHECK(unit_glob_match("export-*.service", "export-.service"));
  CHECK_FALSE(unit_glob_match("export-*.service", "export-nightly.timer"));
  CHECK_FALSE(unit_glob_match("export-*.service", "xexport-nightly.service"));
  CHECK(unit_glob_match("storefront@*.service", "storefront@eu.service"));
  CHECK(unit_glob_match("worker-?.service", "worker-1.service"));
  CHECK_FALSE(unit_glob_match("worker-?.service", "worker-12.service"));
  CHECK(unit_glob_match("*", "anything.service"));
  CHECK(unit_glob_match("a**b.service", "ab.service"));
  CHECK_FALSE(unit_glob_match("storefront.service", "storefront.service2"));
  CHECK_FALSE(unit_glob_match("storefront.service", "storefront.servic"));
  // Linear, not exponential: this would take ages with naive backtracking.
  CHECK_FALSE(unit_glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*b", std::string(200, 'a')));
}

TEST_CASE("unit and slice principals parse, and refuse what can never match") {
  CHECK(parse("unit:storefront.service").kind == Principal::Kind::unit);
  CHECK(parse("unit:export-*.service").pattern == "export-*.service");
  CHECK(parse("slice:shop.slice").kind == Principal::Kind::slice);
  CHECK(parse("slice:shop-*.slice").pattern == "shop-*.slice");
  CHECK(parse("unit:*").pattern == "*");
  CHECK(parse("unit:cltok-*").pattern == "cltok-*");
  CHECK(parse("slice:shop-*").kind == Principal::Kind::slice);
  CHECK_THAT(refusal("unit:storefront"), Catch::Contains("not a unit name with its type"));
  CHECK_THAT(refusal("unit:a b*"), Catch::Contains("not a unit name"));
  CHECK_THAT(refusal("unit:shop.slice"), Catch::Contains("write slice:shop.slice"));
  CHECK_THAT(refusal("slice:storefront.service"), Catch::Contains("not a slice name"));
  CHECK_THAT(refusal("slice:-.slice"), Catch::Contains("root slice"));
  CHECK_THAT(refusal("unit:"), Catch::Contains("not a unit name"));
  CHECK_THAT(refusal("unit:a b.service"), Catch::Contains("not a unit name"));
  CHECK_THAT(refusal("unit:[ab].service"), Catch::Contains("not a unit name"));
  CHECK_THAT(refusal("service:x.service"), Catch::Contains("unit:NAME, slice:NAME"));
}

TEST_CASE("a unit principal matches the peer's unit; a slice principal any slice above it") {
  const auto storefront = in_unit(SystemdUnit{"storefront.service", {"shop.slice", "shop-eu.slice"}});
  const auto export_job = in_unit(SystemdUnit{"export-nightly.service", {"system.slice"}});
  CHECK(parse("unit:storefront.service").matches(storefront));
  CHECK_FALSE(parse("unit:storefront.service").matches(export_job));
  CHECK(parse("unit:export-*.service").matches(export_job));
  CHECK(parse("slice:shop.slice").matches(storefront));
  CHECK(parse("slice:shop-eu.slice").matches(storefront));
  CHECK(parse("slice:shop-*.slice").matches(storefront));
  CHECK_FALSE(parse("slice:shop.slice").matches(export_job));
  CHECK_FALSE(parse("slice:system.slice").matches(storefront));
}

TEST_CASE("a peer whose unit is unknown never matches a unit or slice principal, and still its uid") {
  const auto unknown = in_unit(std::nullopt, 1001);
  CHECK_FALSE(parse("unit:*").matches(unknown));
  CHECK_FALSE(parse("slice:*").matches(unknown));
  CHECK(parse("uid:1001").matches(unknown));
  CHECK(allowed({parse("unit:storefront.service"), parse("uid:1001")}, unknown));
  CHECK_FALSE(allowed({parse("unit:storefront.service")}, unknown));
  // The uid does not stand in for the unit either way: same uid, other unit.
  const auto other = in_unit(SystemdUnit{"other.service", {"system.slice"}}, 1001);
  CHECK_FALSE(allowed({parse("unit:storefront.service")}, other));
}

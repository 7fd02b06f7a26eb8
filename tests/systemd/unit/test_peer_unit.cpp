// The peer's unit, read through a pidfd, with real processes on a real Unix socket: a peer
// that is gone, or has changed its uid since it connected, is never identified; a live one
// is read from its own /proc/PID/cgroup. (The systemd units themselves: inside_boot.py.)
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "server/peer.hpp"
#include "server/peer_unit.hpp"

using namespace cltoken;

namespace {

/// A listening socket in a fresh folder, and child processes that connect to it; the
/// children are ended by pid and reaped.
class Rendezvous {
public:
  Rendezvous() {
    char tmpl[] = "/tmp/cltok-peer-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/s";
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr = address();
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_, 4) == 0);
  }
  Rendezvous(const Rendezvous&) = delete;
  Rendezvous& operator=(const Rendezvous&) = delete;
  ~Rendezvous() {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    if (accepted_ >= 0) ::close(accepted_);
    ::close(listener_);
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }

  /// Forks a child that connects, runs `then` (0: fine), tells us through a pipe, and waits
  /// to be killed unless `exit_after` (then it exits at once).
  void child(bool exit_after, int (*then)()) {
    int ready[2];
    REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
    child_ = ::fork();
    REQUIRE(child_ >= 0);
    if (child_ == 0) {
      int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr = address();
      char ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && then() == 0 ? 'y' : 'n';
      (void)!::write(ready[1], &ok, 1);
      if (exit_after) ::_exit(0);
      for (;;) ::pause();
    }
    ::close(ready[1]);
    char ok = 0;
    REQUIRE(::read(ready[0], &ok, 1) == 1);
    ::close(ready[0]);
    REQUIRE(ok == 'y');
    accepted_ = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(accepted_ >= 0);
  }

  /// Waits for a child that exits by itself, so that its pid is gone.
  void reap() {
    REQUIRE(::waitpid(child_, nullptr, 0) == child_);
    child_ = -1;
  }

  [[nodiscard]] int accepted() const { return accepted_; }
  [[nodiscard]] pid_t pid() const { return child_; }

private:
  sockaddr_un address() const {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    return addr;
  }

  std::string dir_, path_;
  int listener_ = -1;
  int accepted_ = -1;
  pid_t child_ = -1;
};

PeerIdentity identity(int fd) {
  std::error_code ec;
  PeerIdentity peer = read_peer_identity(fd, ec);
  REQUIRE_FALSE(ec);
  return peer;
}

int nothing() { return 0; }

int become_nobody() { return ::setresgid(65534, 65534, 65534) == 0 && ::setresuid(65534, 65534, 65534) == 0 ? 0 : 1; }

} // namespace

TEST_CASE("peer unit: a peer that exited before its unit is read is not identified") {
  Rendezvous r;
  r.child(/*exit_after=*/true, nothing);
  const PeerIdentity peer = identity(r.accepted());
  r.reap();
  auto lookup = look_up_peer_unit(r.accepted(), peer);
  CHECK_FALSE(lookup.unit);
  INFO(lookup.unknown_because);
  CHECK((lookup.unknown_because == "no pidfd for the peer" ||
         lookup.unknown_because == "the peer has exited or is in a pid namespace the daemon cannot see"));
}

TEST_CASE("peer unit: a peer whose uid changed after connecting is not identified") {
  if (::geteuid() != 0) {
    WARN("needs root to change a child's uid: skipped");
    return;
  }
  Rendezvous r;
  r.child(/*exit_after=*/false, become_nobody);
  const PeerIdentity peer = identity(r.accepted());
  CHECK(peer.uid == 0); // what the kernel saw at connect time
  auto lookup = look_up_peer_unit(r.accepted(), peer);
  CHECK_FALSE(lookup.unit);
  CHECK(lookup.unknown_because == "the peer's uid or gid changed since it connected");
}

TEST_CASE("peer unit: a live peer is read from its own cgroup") {
  Rendezvous r;
  r.child(/*exit_after=*/false, nothing);
  const PeerIdentity peer = identity(r.accepted());
  std::ifstream in("/proc/" + std::to_string(r.pid()) + "/cgroup");
  std::stringstream contents;
  contents << in.rdbuf();
  const auto expected = unit_of_proc_cgroup(contents.str());
  auto lookup = look_up_peer_unit(r.accepted(), peer);
  INFO(contents.str() << " -> " << lookup.unknown_because);
  if (expected) {
    REQUIRE(lookup.unit);
    CHECK(lookup.unit->name == expected->name);
    CHECK(lookup.unit->slices == expected->slices);
    CHECK(lookup.unknown_because.empty());
  } else {
    CHECK_FALSE(lookup.unit);
    CHECK(lookup.unknown_because == "the peer's cgroup is not a systemd unit's");
  }
}

TEST_CASE("peer unit: no warnings without unit principals, one per principal where units cannot be told") {
  CHECK(unit_principal_warnings({}).empty());
  const auto warnings = unit_principal_warnings(
      {"c.toml:3: credentials.x.allow names unit:a.service", "c.toml:4: credentials.x.allow names slice:b.slice"});
  const bool blind = unit_principals_unavailable().has_value() || proc_hides_other_users();
  REQUIRE(warnings.size() == (blind ? 2u : 0u));
  if (blind) CHECK(warnings[1].rfind("c.toml:4: credentials.x.allow names slice:b.slice, which ", 0) == 0);
}

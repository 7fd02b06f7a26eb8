#include "server/peer_unit.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <string_view>

#include "core/systemd_unit.hpp"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 // Linux 6.5; Debian 12's headers predate it
#endif

namespace cltoken {

namespace {

/// Closes a file descriptor when it goes out of scope.
class Fd {
public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int get() const { return fd_; }

private:
  int fd_;
};

/// A small /proc file, whole (they are generated at each read; a short read would cut a line).
std::optional<std::string> read_small(const std::string& path, std::size_t max = 16384) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return std::nullopt;
  std::string out(max, '\0');
  std::size_t used = 0;
  for (;;) {
    const ssize_t n = ::read(fd.get(), out.data() + used, out.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
    if (used == out.size()) return std::nullopt; // larger than any sane cgroup path: refuse
  }
  out.resize(used);
  return out;
}

/// The number after `key` ("Pid:", "Uid:") in a /proc status-like text; the first of several.
std::optional<long> field(std::string_view text, std::string_view key) {
  for (std::size_t at = 0; at < text.size();) {
    const auto nl = text.find('\n', at);
    std::string_view line = text.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
    at = nl == std::string_view::npos ? text.size() : nl + 1;
    if (!line.starts_with(key)) continue;
    line.remove_prefix(key.size());
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    long v = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
    if (ec != std::errc{}) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

/// The second number of a "Uid:"/"Gid:" line: real, EFFECTIVE, saved, filesystem.
std::optional<long> effective_id(std::string_view status, std::string_view key) {
  for (std::size_t at = 0; at < status.size();) {
    const auto nl = status.find('\n', at);
    std::string_view line = status.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
    at = nl == std::string_view::npos ? status.size() : nl + 1;
    if (!line.starts_with(key)) continue;
    line.remove_prefix(key.size());
    long values[2] = {-1, -1};
    for (long& v : values) {
      while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
      auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
      if (ec != std::errc{}) return std::nullopt;
      line.remove_prefix(static_cast<std::size_t>(p - line.data()));
    }
    return values[1];
  }
  return std::nullopt;
}

int open_peer_pidfd(int socket_fd, const PeerIdentity& peer) {
  int pidfd = -1;
  socklen_t len = sizeof pidfd;
  if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0) return pidfd;
  // A kernel with SO_PEERPIDFD that gives none: the peer is gone, and its pid may already be
  // another process's. Only a kernel without the option gets the fallback.
  if (errno != ENOPROTOOPT) return -1;
  // Older kernels: a pidfd for the pid the peer had at connect time. That pid may since
  // belong to another process; the uid/gid check after reading catches most such swaps,
  // and docs/security.md says what remains.
  if (peer.pid <= 0) return -1;
  return static_cast<int>(::syscall(SYS_pidfd_open, peer.pid, 0));
}

/// The pid the pidfd refers to, as this pid namespace numbers it (its fdinfo): -1 once the
/// process has exited and been reaped, 0 when it lives in a pid namespace we cannot see into.
/// Needs no permission over the process, unlike a signal.
std::optional<long> pid_of(int pidfd) {
  auto info = read_small("/proc/self/fdinfo/" + std::to_string(pidfd));
  return info ? field(*info, "Pid:") : std::nullopt;
}

} // namespace

std::optional<std::string> unit_principals_unavailable() {
  struct stat st {};
  if (::lstat("/run/systemd/system", &st) != 0 || !S_ISDIR(st.st_mode))
    return "systemd is not the init system here (no /run/systemd/system)";
  struct statfs fs {};
  if (::statfs("/sys/fs/cgroup", &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC)
    return "/sys/fs/cgroup is not the unified cgroup v2 hierarchy (cgroup v1 or hybrid)";
  return std::nullopt;
}

bool proc_hides_other_users() {
  auto mountinfo = read_small("/proc/self/mountinfo", 1 << 20);
  if (!mountinfo) return false;
  std::string_view text = *mountinfo;
  bool hides = false;
  for (std::size_t at = 0; at < text.size();) {
    const auto nl = text.find('\n', at);
    const std::string_view line = text.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
    at = nl == std::string_view::npos ? text.size() : nl + 1;
    // "ID PARENT DEV ROOT /proc OPTIONS - proc proc rw,hidepid=invisible,subset=pid". Mounts
    // stack (systemd mounts its own proc over the host's): the last one is what we see.
    if (line.find(" /proc ") == std::string_view::npos || line.find(" - proc ") == std::string_view::npos) continue;
    const auto h = line.find("hidepid=");
    if (h == std::string_view::npos) {
      hides = false;
      continue;
    }
    const std::string_view value = line.substr(h + 8, line.find_first_of(", ", h) - (h + 8));
    hides = value != "0" && value != "off";
  }
  return hides;
}

PeerUnitLookup look_up_peer_unit(int socket_fd, const PeerIdentity& peer) {
  Fd pidfd(open_peer_pidfd(socket_fd, peer));
  if (pidfd.get() < 0) return {std::nullopt, "no pidfd for the peer"};
  const auto pid = pid_of(pidfd.get());
  if (!pid || *pid <= 0) return {std::nullopt, "the peer has exited or is in a pid namespace the daemon cannot see"};
  const std::string proc = "/proc/" + std::to_string(*pid);
  auto cgroup = read_small(proc + "/cgroup");
  auto status = read_small(proc + "/status");
  if (!cgroup || !status) return {std::nullopt, "the peer's /proc entry cannot be read (hidden or gone)"};
  // Still there after the reads: the pid was not reused while we read, so both files were
  // the pidfd's process. Its uid and gid must still be those of the connection.
  if (pid_of(pidfd.get()) != pid) return {std::nullopt, "the peer exited while its cgroup was read"};
  if (effective_id(*status, "Uid:") != static_cast<long>(peer.uid) ||
      effective_id(*status, "Gid:") != static_cast<long>(peer.gid))
    return {std::nullopt, "the peer's uid or gid changed since it connected"};
  auto unit = unit_of_proc_cgroup(*cgroup);
  if (!unit) return {std::nullopt, "the peer's cgroup is not a systemd unit's"};
  return {std::move(unit), {}};
}

std::vector<std::string> unit_principal_warnings(const std::vector<std::string>& unit_principals) {
  if (unit_principals.empty()) return {};
  std::string why;
  if (auto reason = unit_principals_unavailable())
    why = "can never match on this host: " + *reason + "; such peers are matched by their uid and gid only";
  else if (proc_hides_other_users())
    why = "matches only peers of the daemon's own user: /proc hides other users' processes (systemd's "
          "ProtectProc=invisible); set ProtectProc=default in a drop-in to tell other users' units apart";
  else return {};
  std::vector<std::string> out;
  for (const auto& where : unit_principals) out.push_back(where + ", which " + why);
  return out;
}

} // namespace cltoken

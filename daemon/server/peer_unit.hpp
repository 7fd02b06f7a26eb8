#pragma once
// The systemd unit of a connected peer, read once per connection from /proc/PID/cgroup and
// tied to the peer process by a pidfd, so that a pid reused by another process is never
// read in its place (docs/security.md, "Unit and slice principals").
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/principal.hpp"

namespace cltoken {

/// Why unit and slice principals cannot match on this host, or nullopt when they can:
/// systemd must be the init system (/run/systemd/system) and /sys/fs/cgroup the unified
/// (v2) hierarchy. Read once at start; `proc_hides_peers` adds what the daemon's own /proc
/// mount hides (ProtectProc=invisible makes other users' processes unreadable).
[[nodiscard]] std::optional<std::string> unit_principals_unavailable();

/// True when /proc is mounted with hidepid (systemd's ProtectProc=): the cgroup of a peer
/// running as another user cannot be read, so its unit is never known.
[[nodiscard]] bool proc_hides_other_users();

/// The peer's unit, or why it is not known.
struct PeerUnitLookup {
  std::optional<SystemdUnit> unit;
  std::string_view unknown_because; ///< empty when `unit` is set
};

/// The peer's unit: through SO_PEERPIDFD where the kernel has it (Linux 6.5), else
/// pidfd_open() on SO_PEERCRED's pid; after reading /proc/PID/cgroup, the process behind
/// the pidfd must still be there and still have the uid and gid SO_PEERCRED reported.
/// No unit whenever any of that cannot be established.
[[nodiscard]] PeerUnitLookup look_up_peer_unit(int socket_fd, const PeerIdentity& peer);

/// For --check and the start-up log: one warning per unit or slice principal of the config
/// (Config::unit_principals) when this host, or this process's /proc, cannot tell units.
[[nodiscard]] std::vector<std::string> unit_principal_warnings(const std::vector<std::string>& unit_principals);

} // namespace cltoken

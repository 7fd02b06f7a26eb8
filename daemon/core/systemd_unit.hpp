#pragma once
// Which systemd unit a process belongs to, from its cgroup path on the unified hierarchy
// (/proc/PID/cgroup, line "0::/PATH"). Pure parsing: daemon/server/peer_unit.cpp reads the
// file. docs/security.md says what a unit proves and what it does not.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cltoken {

/// The system manager's unit of a process and the slices above it, outermost first.
struct SystemdUnit {
  std::string name;                ///< "storefront.service", "session-4.scope", "user@1000.service"
  std::vector<std::string> slices; ///< {"shop.slice", "shop-eu.slice"}; "-.slice" is never listed
};

/// The unit of a cgroup path as the reader's cgroup namespace shows it ("/system.slice/
/// foo.service/sub"). Everything below the unit's own cgroup is the unit's to arrange
/// (Delegate=, a user manager, a container), so a service a user starts under
/// user@1000.service is user@1000.service here, whatever it calls itself. nullopt for the
/// root cgroup, a path outside the reader's cgroup namespace ("/../.."), a process right in
/// a slice, or a name that is not a unit's.
[[nodiscard]] std::optional<SystemdUnit> unit_of_cgroup_path(std::string_view path);

/// The unit from the contents of /proc/PID/cgroup: only the unified hierarchy's "0::" line
/// counts (cgroup v1 hierarchies name no unit that systemd vouches for).
[[nodiscard]] std::optional<SystemdUnit> unit_of_proc_cgroup(std::string_view contents);

/// A unit name as systemd allows it: [A-Za-z0-9:_.\\@-], at most 255 bytes, with a type suffix.
[[nodiscard]] bool valid_unit_name(std::string_view name);

/// Shell-style match of a unit or slice name: `*` any run of characters, `?` one; no other
/// special characters (unit names cannot contain any).
[[nodiscard]] bool unit_glob_match(std::string_view pattern, std::string_view name);

} // namespace cltoken

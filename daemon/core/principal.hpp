#pragma once
// Who may do what: principals from the config and the peer identity the kernel reports
// for a connection (SO_PEERCRED, SO_PEERGROUPS), with the peer's systemd unit when it could
// be told for sure (daemon/server/peer_unit.hpp). Matching is a pure function.
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/systemd_unit.hpp"

namespace cltoken {

/// The identity of a connected peer, as the kernel reported it at accept time.
struct PeerIdentity {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  pid_t pid = 0;
  std::vector<gid_t> groups; ///< supplementary groups (the primary gid may appear too)
  /// The systemd unit, read once per connection through a pidfd; nullopt when it cannot be
  /// told (no systemd or cgroup v2, the peer exited, another cgroup namespace ...): then no
  /// unit or slice principal matches.
  std::optional<SystemdUnit> unit;
};

/// One `allow`/`admin` entry, with user and group names already resolved to ids.
struct Principal {
  enum class Kind { uid, gid, any, unit, slice };
  Kind kind = Kind::any;
  unsigned id = 0;
  std::string text;    ///< as written in the config, for messages
  std::string pattern; ///< unit and slice: a name or a glob (`*`, `?`)

  [[nodiscard]] bool matches(const PeerIdentity& peer) const;
};

/// Resolves names to ids (getpwnam/getgrnam in the daemon, a table in tests).
class NameResolver {
public:
  virtual ~NameResolver() = default;
  [[nodiscard]] virtual std::optional<uid_t> user(const std::string& name) const = 0;
  [[nodiscard]] virtual std::optional<gid_t> group(const std::string& name) const = 0;
};

/// Resolver backed by the system user and group databases (NSS).
class SystemNameResolver final : public NameResolver {
public:
  [[nodiscard]] std::optional<uid_t> user(const std::string& name) const override;
  [[nodiscard]] std::optional<gid_t> group(const std::string& name) const override;
};

/// Parses "uid:N", "gid:N", "user:NAME", "group:NAME", "unit:NAME", "slice:NAME" or "*"
/// (unit and slice names may hold the globs `*` and `?`).
/// Returns the principal, or an error sentence in `error`.
std::optional<Principal> parse_principal(std::string_view text, const NameResolver& names, std::string& error);

/// True when any principal in the list matches the peer.
[[nodiscard]] bool allowed(const std::vector<Principal>& list, const PeerIdentity& peer);

} // namespace cltoken

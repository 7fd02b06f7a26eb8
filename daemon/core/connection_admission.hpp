#pragma once
// Whether a new connection may stay open: one uid holding idle connections must
// not lock the others out. Each uid may hold max_connections_per_peer
// connections; all non-admin peers together may hold max_connections minus
// admin_reserved_connections, so root and the admin principals can always reach
// the daemon (cl-tokenctl status, reload). Over a limit the listener closes the
// new connection at once and keeps accepting: the peer over its limit is the
// only one refused. Pure decision; counting is RequestSlots'.
#include <cstddef>

namespace cltoken {

enum class Admission {
  accept,
  peer_full,   ///< this uid already holds max_connections_per_peer connections
  daemon_full, ///< no room left for this peer (others than admins: the reserve is not theirs)
};

struct ConnectionLimits {
  std::size_t max_connections = 256;
  std::size_t per_peer = 128;     ///< 0: no per-uid cap
  std::size_t admin_reserved = 8; ///< of max_connections, only admins may use these
};

/// `open`: connections open in all; `open_by_peer`: those of this peer's uid.
[[nodiscard]] Admission admit_connection(const ConnectionLimits& limits, std::size_t open, std::size_t open_by_peer, bool admin);

[[nodiscard]] const char* to_string(Admission a);

} // namespace cltoken

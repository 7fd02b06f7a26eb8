#pragma once
// Peer identity of a Unix-socket connection, read from the kernel at accept time
// (SO_PEERCRED for uid/gid/pid, SO_PEERGROUPS for supplementary groups), never from /proc.
#include <system_error>

#include "core/principal.hpp"

namespace cltoken {

/// Reads the peer's credentials of a connected AF_UNIX socket.
PeerIdentity read_peer_identity(int fd, std::error_code& ec);

} // namespace cltoken

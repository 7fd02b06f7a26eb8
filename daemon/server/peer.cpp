#include "server/peer.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace cltoken {

PeerIdentity read_peer_identity(int fd, std::error_code& ec) {
  PeerIdentity peer;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    ec = std::error_code(errno, std::system_category());
    return peer;
  }
  peer.uid = cred.uid;
  peer.gid = cred.gid;
  peer.pid = cred.pid;
  // SO_PEERGROUPS (Linux 4.13+): the groups as they were when the peer connected.
  // ERANGE tells the size needed.
  std::vector<gid_t> groups(64);
  for (int tries = 0; tries < 4; ++tries) {
    socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
      groups.resize(glen / sizeof(gid_t));
      peer.groups = std::move(groups);
      return peer;
    }
    if (errno != ERANGE) {
      ec = std::error_code(errno, std::system_category());
      return peer;
    }
    groups.resize(glen / sizeof(gid_t) + 1);
  }
  ec = std::make_error_code(std::errc::value_too_large);
  return peer;
}

} // namespace cltoken

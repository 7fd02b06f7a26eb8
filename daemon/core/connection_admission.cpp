#include "core/connection_admission.hpp"

#include <algorithm>

namespace cltoken {

Admission admit_connection(const ConnectionLimits& limits, std::size_t open, std::size_t open_by_peer, bool admin) {
  const std::size_t room =
      admin ? limits.max_connections : limits.max_connections - std::min(limits.admin_reserved, limits.max_connections);
  if (open >= room) return Admission::daemon_full;
  if (limits.per_peer != 0 && open_by_peer >= limits.per_peer) return Admission::peer_full;
  return Admission::accept;
}

const char* to_string(Admission a) {
  switch (a) {
  case Admission::accept: return "accept";
  case Admission::peer_full: return "server.max_connections_per_peer";
  case Admission::daemon_full: return "server.max_connections";
  }
  return "?";
}

} // namespace cltoken

#pragma once
// One client connection: HTTP/1.1 with keep-alive over the Unix socket. Every wait has a
// deadline: idle_timeout_ms while waiting for a request to start (one timer for all idle
// connections, in the listener), request_timeout_ms for the rest; header and body sizes
// are capped, and so is the number of requests one uid may have in progress
// (max_requests_per_peer).
#include <array>
#include <cstdint>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "core/config.hpp"
#include "core/idle_connections.hpp"
#include "core/log_throttle.hpp"
#include "core/request_slots.hpp"
#include "server/handler.hpp"

namespace cltoken {

/// Shared by the listener and its connections, so that a stop can end idle keep-alive
/// connections at once while busy ones finish their request, and one timer can end
/// those idle for longer than idle_timeout_ms.
struct ConnectionControl {
  bool stopping = false;
  IdleConnections idle;     ///< connections waiting for a request
  RequestSlots slots;       ///< requests in progress per uid
  RequestSlots connections; ///< open connections per uid (counted; the listener decides)
  PeerLogThrottle refusals; ///< log lines about refused requests and connections, per uid
  /// Where each request's first bytes are read, parsed and wiped without a wait in
  /// between: one array for all connections instead of a buffer each (a POST of a token
  /// to verify fits; a longer request goes on in its connection's own buffer).
  std::array<char, 4096> landing{};

  void stop() {
    stopping = true;
    for (auto& close : idle.take_served()) close();
  }
};

/// Requests one connection is served in a row, its next one having arrived each time,
/// before the other connections' ready events run (docs/architecture.md).
inline constexpr unsigned max_served_in_a_row = 4;

/// Serves requests on `socket` until the peer closes, a limit is hit, or a stop.
boost::asio::awaitable<void> run_connection(boost::asio::local::stream_protocol::socket socket, PeerIdentity peer,
                                            const ServerConfig& config, Handler& handler, const Clock& clock,
                                            ConnectionControl& control);

} // namespace cltoken

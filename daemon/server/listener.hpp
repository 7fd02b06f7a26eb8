#pragma once
// The Unix-socket listener: binds the configured path (or adopts systemd's listener),
// accepts connections, admits them by peer (core/connection_admission.hpp), and runs one
// Connection per client.
#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include "async/clock_timer.hpp"

#include "core/config.hpp"
#include "core/log_throttle.hpp"
#include "server/connection.hpp"
#include "server/handler.hpp"

namespace cltoken {

class Listener {
public:
  /// Creates the socket at config.socket, in a folder that only the daemon or root may
  /// write, with socket_mode and socket_group. A stale socket file (nobody listening) is
  /// replaced; a live one or any other file is an error. Throws std::runtime_error.
  Listener(boost::asio::any_io_executor executor, const ServerConfig& config, Handler& handler, const Clock& clock);
  /// Adopts an already-listening socket (systemd socket activation).
  Listener(boost::asio::any_io_executor executor, int listening_fd, const ServerConfig& config, Handler& handler,
           const Clock& clock);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  /// Accepts until stop().
  void start();
  /// Stops accepting; open connections finish their current request and close.
  void stop();
  /// Applies limits from a reloaded config (the socket itself stays).
  void update(const ServerConfig& config);
  [[nodiscard]] std::size_t connections() const { return connections_; }
  /// Returns once every connection has closed, or at `until` (the shutdown's grace).
  boost::asio::awaitable<void> wait_closed(SteadyTime until);
  /// True when the listener owns the socket file (and removes it on exit).
  [[nodiscard]] bool owns_path() const { return owns_path_; }

private:
  boost::asio::awaitable<void> accept_loop();
  /// Closes connections idle for longer than idle_timeout_ms: one timer, set for the
  /// oldest idle connection, for all of them.
  boost::asio::awaitable<void> idle_timer();
  void apply_limits();

  boost::asio::any_io_executor executor_;
  ServerConfig config_;
  Handler& handler_;
  const Clock& clock_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  bool owns_path_ = false;
  std::optional<std::pair<dev_t, ino_t>> socket_file_; ///< the socket file we created
  LogThrottle accept_log_;
  /// Whether peers' systemd units can be read on this host (server/peer_unit.hpp).
  bool read_units_ = false;
  ConnectionControl control_;
  ClockTimer idle_timer_;
  ClockTimer closed_; ///< cancelled as the last connection closes
  std::size_t connections_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace cltoken

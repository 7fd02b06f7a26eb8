#pragma once
// The daemon's pulse towards systemd: STATUS= whenever the one-line summary changes, and
// WATCHDOG=1 only while the refresh loop makes progress (watchdog.hpp), so that systemd
// restarts a daemon whose tokens would otherwise quietly expire.
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include "async/clock_timer.hpp"

#include "broker/broker.hpp"
#include "core/clock.hpp"

namespace cltoken::systemd {

class Heartbeat {
public:
  /// `fetch_bound`: how long a fetch may take before the refresh loop counts as stuck.
  Heartbeat(boost::asio::any_io_executor executor, const Clock& clock, Broker& broker, SteadyClock::duration fetch_bound);
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  /// Beats until stop().
  boost::asio::awaitable<void> run();
  void stop();

  /// Appended to the status line until replaced; "" clears it (why the last reload failed).
  void set_note(std::string note) { note_ = std::move(note); }
  /// A reloaded config may change the upstream deadlines.
  void set_fetch_bound(SteadyClock::duration bound) { fetch_bound_ = bound; }
  /// READY=1 with the summary as of now: at start, and to end a reload.
  void ready();

private:
  void beat();
  [[nodiscard]] std::string status_line();

  const Clock& clock_;
  Broker& broker_;
  SteadyClock::duration fetch_bound_;
  std::optional<std::chrono::microseconds> watchdog_;
  ClockTimer timer_;
  std::string note_;
  std::string last_status_;
  StatusView view_; ///< reused every beat: building it anew was most of the idle CPU (docs/performance.md)
  std::optional<std::string> stall_;
  bool stopped_ = false;
};

} // namespace cltoken::systemd

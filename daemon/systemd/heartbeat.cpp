#include "systemd/heartbeat.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "async/spawn.hpp"
#include "systemd/notify.hpp"
#include "systemd/status_line.hpp"
#include "systemd/watchdog.hpp"

namespace cltoken::systemd {

namespace asio = boost::asio;

Heartbeat::Heartbeat(asio::any_io_executor executor, const Clock& clock, Broker& broker, SteadyClock::duration fetch_bound)
    : clock_(clock), broker_(broker), fetch_bound_(fetch_bound), watchdog_(watchdog_interval()), timer_(executor) {}

std::string Heartbeat::status_line() {
  std::string note = note_;
  if (stall_) note = "refresh loop stuck: " + *stall_ + (note.empty() ? "" : "; " + note);
  broker_.status_view(view_);
  return systemd::status_line(view_, clock_.now(), note);
}

void Heartbeat::ready() {
  last_status_ = status_line();
  notify("READY=1\nSTATUS=" + last_status_);
}

void Heartbeat::beat() {
  const auto stall = refresh_loop_stall(broker_.progress(), clock_.now(), fetch_bound_);
  if (stall && !stall_)
    spdlog::error("{}; {}", *stall, watchdog_ ? "no more watchdog pings: systemd will restart the daemon" : "restart the daemon");
  if (!stall && stall_) spdlog::info("the refresh loop makes progress again");
  stall_ = stall;
  std::string status = status_line();
  std::string message;
  if (status != last_status_) message = "STATUS=" + status;
  // Withholding the ping is the whole point: systemd kills and restarts us after WatchdogSec.
  if (watchdog_ && !stall_) message += (message.empty() ? "" : "\n") + std::string("WATCHDOG=1");
  if (!message.empty()) notify(message);
  last_status_ = std::move(status);
}

asio::awaitable<void> Heartbeat::run() {
  // Half the watchdog interval, as sd_watchdog_enabled(3) advises; at least every second
  // for STATUS=, so `systemctl status` follows the token states closely.
  SteadyClock::duration period = Seconds(1);
  if (watchdog_) period = std::min<SteadyClock::duration>(period, *watchdog_ / 2);
  while (!stopped_) {
    beat();
    timer_.expires_after(period);
    co_await timer_.async_wait(use_tuple);
  }
}

void Heartbeat::stop() {
  stopped_ = true;
  timer_.cancel();
}

} // namespace cltoken::systemd

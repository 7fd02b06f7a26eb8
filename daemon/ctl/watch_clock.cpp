#include "watch_clock.hpp"

#include <csignal>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

namespace cltoken::ctl {

struct WatchClock::State {
  boost::asio::io_context io;
  boost::asio::signal_set signals{io, SIGINT, SIGTERM};
  bool stopped = false;
};

WatchClock::WatchClock() : state_(std::make_unique<State>()) {}

WatchClock::~WatchClock() = default;

bool WatchClock::wait(std::chrono::milliseconds interval) {
  if (state_->stopped) return false;
  boost::asio::steady_timer timer(state_->io, interval);
  timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) state_->signals.cancel();
  });
  state_->signals.async_wait([this, &timer](const boost::system::error_code& ec, int) {
    if (!ec) {
      state_->stopped = true;
      timer.cancel();
    }
  });
  state_->io.restart();
  state_->io.run();
  return !state_->stopped;
}

} // namespace cltoken::ctl

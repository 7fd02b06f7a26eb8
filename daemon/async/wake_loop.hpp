#pragma once
// A driver's one wake-up timer, armed at its core's next_wake(): the run loop the broker
// and the sessions share. The core says when it wants to be woken; after each event the
// driver re-arms, which ends the current wait early only when that time changed.
#include <functional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include "async/clock_timer.hpp"
#include "async/spawn.hpp"

namespace cltoken {

class WakeLoop {
public:
  explicit WakeLoop(boost::asio::any_io_executor executor) : executor_(executor), timer_(executor) {}

  /// Until stop(): waits until `next()`, then calls `wake()`. The loop is a task the
  /// daemon cannot run without: an exception out of it ends the daemon (Rethrow `what`).
  void start(std::function<SteadyTime()> next, std::function<void()> wake, std::string what) {
    running_ = true;
    boost::asio::co_spawn(executor_, run(std::move(next), std::move(wake)), Rethrow{std::move(what)});
  }
  /// The core now wants to be woken at `next`.
  void rearm(SteadyTime next) {
    if (running_ && next != armed_) timer_.cancel();
  }
  void stop() {
    running_ = false;
    timer_.cancel();
  }
  [[nodiscard]] bool running() const { return running_; }

private:
  boost::asio::awaitable<void> run(std::function<SteadyTime()> next, std::function<void()> wake) {
    while (running_) {
      armed_ = next();
      timer_.expires_at(armed_);
      auto [ec] = co_await timer_.async_wait(use_tuple);
      if (!running_) break;
      if (ec) continue; // re-armed for another time
      wake();
    }
  }

  boost::asio::any_io_executor executor_;
  ClockTimer timer_;
  SteadyTime armed_ = SteadyTime::max();
  bool running_ = false;
};

} // namespace cltoken

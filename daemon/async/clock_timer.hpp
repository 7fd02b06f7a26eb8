#pragma once
// Timers on the daemon's one injected Clock. An Asio waitable timer over a clock type that
// reads the Clock main (or a test) installed: the simplest way to route every deadline
// through it, because the timers stay ordinary Asio timers (async_wait, cancel, the same
// coroutines) and each use changes only its type. A timer service interface with a real
// and a virtual implementation would have had to be threaded through every constructor
// and reimplement what Asio's timer queue already does.
//
// In virtual time (a test's FakeClock) nothing waits in real time: the wait traits tell
// the reactor "due now", so each io_context::poll() compares every deadline with the
// virtual clock, and the test moves that clock to the next wake-up.
#include <boost/asio/basic_waitable_timer.hpp>

#include "core/clock.hpp"

namespace cltoken {

/// The Clock every timer reads. Single-threaded, like the daemon: install before timers run.
class TimerClock {
public:
  using rep = SteadyClock::rep;
  using period = SteadyClock::period;
  using duration = SteadyClock::duration;
  using time_point = SteadyTime;
  static constexpr bool is_steady = true;

  [[nodiscard]] static time_point now() noexcept { return source_ ? source_->now() : SteadyClock::now(); }
  [[nodiscard]] static bool virtual_time() noexcept { return virtual_; }
  [[nodiscard]] static const Clock* source() noexcept { return source_; }

  /// Timers read `clock` from now on; `virtual_time`: the clock only moves when a test moves
  /// it, so no one waits for it in real time. nullptr: the system's steady clock.
  static void install(const Clock* clock, bool virtual_time = false) noexcept {
    source_ = clock;
    virtual_ = clock != nullptr && virtual_time;
  }

private:
  static inline const Clock* source_ = nullptr;
  static inline bool virtual_ = false;
};

/// How long the reactor may sleep before a deadline: the real span, or none in virtual time.
struct TimerClockWaitTraits {
  static TimerClock::duration to_wait_duration(const TimerClock::duration& d) {
    return TimerClock::virtual_time() ? TimerClock::duration::zero() : d;
  }
  static TimerClock::duration to_wait_duration(const TimerClock::time_point& t) {
    return to_wait_duration(t - TimerClock::now());
  }
};

/// What every daemon timer is: deadlines in the injected Clock's time.
using ClockTimer = boost::asio::basic_waitable_timer<TimerClock, TimerClockWaitTraits>;

/// Installs a clock for the life of a scope (main, a test), and the previous one after it.
class ScopedTimerClock {
public:
  explicit ScopedTimerClock(const Clock& clock, bool virtual_time = false)
      : previous_(TimerClock::source()), previous_virtual_(TimerClock::virtual_time()) {
    TimerClock::install(&clock, virtual_time);
  }
  ~ScopedTimerClock() { TimerClock::install(previous_, previous_virtual_); }
  ScopedTimerClock(const ScopedTimerClock&) = delete;
  ScopedTimerClock& operator=(const ScopedTimerClock&) = delete;

private:
  const Clock* previous_;
  bool previous_virtual_;
};

} // namespace cltoken

#pragma once
// Keeps a noisy event from flooding the journal: at most `burst` lines per window, then
// one line saying how many were left out. A client looping on a refused request, or a
// flood of connections, costs a few log lines a minute. Pure logic on an injected time.
#include <cstdint>

#include "core/clock.hpp"

namespace cltoken {

class LogThrottle {
public:
  explicit LogThrottle(unsigned burst = 10, SteadyClock::duration window = Seconds(60)) : burst_(burst), window_(window) {}

  struct Verdict {
    bool log = false;            ///< write this event's line
    std::uint64_t suppressed = 0; ///< events left out in the window that just ended; say so first
  };

  /// Call once per event.
  Verdict admit(SteadyTime now);

private:
  unsigned burst_;
  SteadyClock::duration window_;
  bool started_ = false;
  SteadyTime window_start_{};
  std::uint64_t in_window_ = 0;
};

} // namespace cltoken

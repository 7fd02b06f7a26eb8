#pragma once
// Keeps a noisy event from flooding the journal: at most `burst` lines per window, then
// one line saying how many were left out. A client looping on a refused request, or a
// flood of connections, costs a few log lines a minute. Pure logic on an injected time.
#include <sys/types.h>

#include <cstdint>
#include <map>

#include "core/clock.hpp"

namespace cltoken {

class LogThrottle {
public:
  explicit LogThrottle(unsigned burst = 10, SteadyClock::duration window = Seconds(60)) : burst_(burst), window_(window) {}

  struct Verdict {
    bool log = false;             ///< write this event's line
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

/// A LogThrottle per peer uid: one peer looping on a refused request uses up its own
/// lines, never those that another peer's events need (a denial of uid 1001 is still
/// logged while uid 1000 floods). Throttles of uids quiet for a window are forgotten once
/// many uids are tracked, so the map stays small.
class PeerLogThrottle {
public:
  explicit PeerLogThrottle(unsigned burst = 10, SteadyClock::duration window = Seconds(60)) : burst_(burst), window_(window) {}

  /// Call once per event of `uid`.
  LogThrottle::Verdict admit(uid_t uid, SteadyTime now);

  [[nodiscard]] std::size_t tracked() const { return peers_.size(); }

private:
  struct Peer {
    LogThrottle throttle;
    SteadyTime last;
  };
  static constexpr std::size_t prune_above = 256;

  unsigned burst_;
  SteadyClock::duration window_;
  std::map<uid_t, Peer> peers_;
};

} // namespace cltoken

#pragma once
// The one source of time. Decisions take a Clock so tests
// can move time by hand; nothing else in the daemon reads the system clocks.
#include <chrono>

namespace cltoken {

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;
using WallTime = std::chrono::system_clock::time_point;
using Seconds = std::chrono::seconds;
using Millis = std::chrono::milliseconds;

/// The current time as an event carries it: monotonic for decisions, wall for the
/// documents handed out.
struct Now {
  SteadyTime steady;
  WallTime wall;
};

/// Monotonic time for schedules and deadlines, wall time for documents.
class Clock {
public:
  virtual ~Clock() = default;
  /// Monotonic: refresh schedules, expiry checks, rate windows.
  [[nodiscard]] virtual SteadyTime now() const = 0;
  /// Wall clock: only for what humans and peers read (expires_at, started_at).
  [[nodiscard]] virtual WallTime wall_now() const = 0;

  /// Maps a monotonic instant to wall time using the current offset between the two.
  [[nodiscard]] WallTime to_wall(SteadyTime t) const {
    return wall_now() + std::chrono::duration_cast<WallTime::duration>(t - now());
  }
  [[nodiscard]] Now both() const { return {now(), wall_now()}; }
};

/// The real clocks.
class SystemClock final : public Clock {
public:
  [[nodiscard]] SteadyTime now() const override;
  [[nodiscard]] WallTime wall_now() const override;
};

} // namespace cltoken

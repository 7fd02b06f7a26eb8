// The one place cl-tokenctl waits on time: the pause between `status --watch` frames.
#pragma once

#include <chrono>
#include <memory>

namespace cltoken::ctl {

/// Waits with an Asio timer and ends the wait early on SIGINT or SIGTERM, so Ctrl-C stops a
/// watch with exit 0 instead of killing it mid-line. The signals are caught for the
/// object's lifetime: one that arrives during a request (bounded by --timeout) ends the next
/// wait at once.
class WatchClock {
public:
  WatchClock();
  ~WatchClock();
  WatchClock(const WatchClock&) = delete;
  WatchClock& operator=(const WatchClock&) = delete;

  /// True after `interval`; false when a stop signal came.
  [[nodiscard]] bool wait(std::chrono::milliseconds interval);

private:
  struct State; // Asio types stay out of this header.
  std::unique_ptr<State> state_;
};

} // namespace cltoken::ctl

#pragma once
// The global upstream budget: at most N token requests in any sliding 60 s window, all
// credentials together, plus a pause after a 429. The auth server counts per client IP,
// so this is what keeps every service on the host away from 429s.
#include <deque>
#include <optional>

#include "core/clock.hpp"

namespace cltoken {

class RateBudget {
public:
  explicit RateBudget(unsigned per_window, Millis window = Millis(60000)) : limit_(per_window), window_(window) {}

  /// True when a request may be sent now (not paused, under the limit).
  [[nodiscard]] bool available(SteadyTime now);
  /// Records a request sent at `now`. Call only after available() said yes.
  void record(SteadyTime now);
  /// Earliest time a request may be sent (now when available).
  [[nodiscard]] SteadyTime next_slot(SteadyTime now);
  /// Requests sent in the window ending now.
  [[nodiscard]] unsigned used(SteadyTime now);
  [[nodiscard]] unsigned remaining(SteadyTime now) { return limit_ - std::min(limit_, used(now)); }
  [[nodiscard]] unsigned limit() const { return limit_; }
  void set_limit(unsigned per_window) { limit_ = per_window; }

  /// Stop all requests until `until` (a 429); an earlier pause never shortens a later one.
  void pause_until(SteadyTime until);
  [[nodiscard]] std::optional<SteadyTime> paused_until(SteadyTime now) const;

private:
  void prune(SteadyTime now);

  unsigned limit_;
  Millis window_;
  std::deque<SteadyTime> sent_;
  SteadyTime paused_until_{};
};

} // namespace cltoken

#pragma once
// The global upstream budget: at most N token requests in any sliding 60 s window, all
// credentials together, plus a pause after a 429. The auth server counts per client IP,
// so this is what keeps every service on the host away from 429s.
//
// The server counts a request when it arrives, which is some time after the daemon sent
// it (a new TLS connection takes longer than a kept-alive one). So a request holds its
// slot while in flight and for a whole window after its answer: two requests that the
// budget lets through a window apart arrive at the server at least a window apart.
#include <deque>
#include <functional>
#include <optional>
#include <vector>

#include "core/budget_record.hpp"
#include "core/clock.hpp"

namespace cltoken {

class RateBudget {
public:
  explicit RateBudget(unsigned per_window, Millis window = Millis(60000)) : limit_(per_window), window_(window) {}

  /// True when a request may be sent now (not paused, under the limit).
  [[nodiscard]] bool available(SteadyTime now);
  /// A request goes out at `now`. Call only after available() said yes.
  void start(SteadyTime now);
  /// The answer (or failure) of a started request came at `now`; its slot frees a window later.
  void finish(SteadyTime now);
  /// Earliest time a request may be sent (now when available). SteadyTime::max() when
  /// only a request still in flight can free a slot: its finish() is the next news.
  [[nodiscard]] SteadyTime next_slot(SteadyTime now);
  /// When each of the next `n` requests could be sent if every one went out as early as
  /// allowed, assuming the requests in flight finish now: what a queued credential is
  /// told about its turn. Changes nothing.
  [[nodiscard]] std::vector<SteadyTime> upcoming(SteadyTime now, std::size_t n) const;
  /// Requests in flight or answered within the last window.
  [[nodiscard]] unsigned used(SteadyTime now);
  [[nodiscard]] unsigned remaining(SteadyTime now) { return limit_ - std::min(limit_, used(now)); }
  [[nodiscard]] unsigned limit() const { return limit_; }
  void set_limit(unsigned per_window) { limit_ = per_window; }

  /// Stop all requests until `until` (a 429); an earlier pause never shortens a later one.
  void pause_until(SteadyTime until);
  [[nodiscard]] std::optional<SteadyTime> paused_until(SteadyTime now) const;

  /// Called after every start, finish and pause: the moment to write the record.
  void on_change(std::function<void()> f) { on_change_ = std::move(f); }
  /// What holds a slot now, in wall time (`wall_now` is the wall time of `now`).
  [[nodiscard]] BudgetRecord record(SteadyTime now, WallTime wall_now);
  /// Takes back what a previous life of the daemon recorded. A request it had in flight
  /// counts as answered `in_flight_allowance` after it was sent (its request deadline),
  /// or now if that is sooner; times in the future (a wall clock set back) count as now;
  /// a pause is held to at most `max_pause` from now. Returns the slots taken back.
  unsigned restore(const BudgetRecord& r, SteadyTime now, WallTime wall_now, Millis in_flight_allowance, Millis max_pause);

private:
  void prune(SteadyTime now);
  void changed() {
    if (on_change_) on_change_();
  }

  unsigned limit_;
  Millis window_;
  std::function<void()> on_change_;
  std::deque<SteadyTime> sent_; ///< send times of the requests in flight, oldest first
  unsigned in_flight_ = 0;
  std::deque<SteadyTime> finished_; ///< answer times within the window, oldest first
  SteadyTime paused_until_{};
};

} // namespace cltoken

#include "core/rate_budget.hpp"

#include <algorithm>

namespace cltoken {

void RateBudget::prune(SteadyTime now) {
  while (!finished_.empty() && finished_.front() + window_ <= now) finished_.pop_front();
}

bool RateBudget::available(SteadyTime now) { return now >= paused_until_ && used(now) < limit_; }

void RateBudget::start(SteadyTime now) {
  ++in_flight_;
  sent_.push_back(now);
  changed();
}

void RateBudget::finish(SteadyTime now) {
  if (in_flight_ > 0) --in_flight_;
  // Which request this answers is not known: dropping the oldest send keeps the record's
  // view of what is still in flight the later, safer one.
  if (!sent_.empty()) sent_.pop_front();
  // Answers come in time order (one monotonic clock), so the deque stays sorted.
  finished_.push_back(std::max(now, finished_.empty() ? now : finished_.back()));
  changed();
}

BudgetRecord RateBudget::record(SteadyTime now, WallTime wall_now) {
  prune(now);
  auto wall = [&](SteadyTime t) { return wall_now - std::chrono::duration_cast<WallTime::duration>(now - t); };
  BudgetRecord r;
  for (auto t : finished_) r.answered.push_back(wall(t));
  for (auto t : sent_) r.in_flight.push_back(wall(t));
  if (now < paused_until_) r.paused_until = wall(paused_until_);
  return r;
}

unsigned RateBudget::restore(const BudgetRecord& r, SteadyTime now, WallTime wall_now, Millis in_flight_allowance,
                             Millis max_pause) {
  auto steady = [&](WallTime t) {
    if (t >= wall_now) return now;
    return now - std::chrono::duration_cast<SteadyClock::duration>(wall_now - t);
  };
  std::vector<SteadyTime> answered;
  for (auto t : r.answered) answered.push_back(steady(t));
  for (auto t : r.in_flight) answered.push_back(std::min(steady(t) + in_flight_allowance, now));
  unsigned taken = 0;
  for (auto t : answered) {
    if (t + window_ <= now) continue;
    finished_.push_back(t);
    ++taken;
  }
  std::sort(finished_.begin(), finished_.end());
  if (r.paused_until && *r.paused_until > wall_now) {
    const auto left = std::chrono::duration_cast<SteadyClock::duration>(*r.paused_until - wall_now);
    paused_until_ = std::max(paused_until_, now + std::min<SteadyClock::duration>(left, max_pause));
  }
  return taken;
}

SteadyTime RateBudget::next_slot(SteadyTime now) {
  prune(now);
  SteadyTime t = std::max(now, paused_until_);
  const std::size_t used_now = in_flight_ + finished_.size();
  if (used_now >= limit_) {
    // The answered request that must leave the window before one more fits.
    const std::size_t excess = used_now - limit_;
    if (excess >= finished_.size()) return SteadyTime::max();
    t = std::max(t, finished_[excess] + window_);
  }
  return t;
}

std::vector<SteadyTime> RateBudget::upcoming(SteadyTime now, std::size_t n) const {
  RateBudget copy = *this;
  copy.on_change_ = nullptr; // an estimate changes nothing worth recording
  for (; copy.in_flight_ > 0;) copy.finish(now);
  std::vector<SteadyTime> out;
  out.reserve(n);
  while (out.size() < n) {
    const SteadyTime t = copy.next_slot(now);
    if (t == SteadyTime::max()) break; // a zero limit: no turn ever comes
    // Sent and answered at once: the estimate cannot know how long requests take.
    copy.start(t);
    copy.finish(t);
    out.push_back(t);
    now = t;
  }
  return out;
}

unsigned RateBudget::used(SteadyTime now) {
  prune(now);
  return in_flight_ + static_cast<unsigned>(finished_.size());
}

void RateBudget::pause_until(SteadyTime until) {
  paused_until_ = std::max(paused_until_, until);
  changed();
}

std::optional<SteadyTime> RateBudget::paused_until(SteadyTime now) const {
  if (now < paused_until_) return paused_until_;
  return std::nullopt;
}

} // namespace cltoken

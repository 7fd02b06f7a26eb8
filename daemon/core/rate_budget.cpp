#include "core/rate_budget.hpp"

#include <algorithm>

namespace cltoken {

void RateBudget::prune(SteadyTime now) {
  while (!finished_.empty() && finished_.front() + window_ <= now) finished_.pop_front();
}

bool RateBudget::available(SteadyTime now) { return now >= paused_until_ && used(now) < limit_; }

void RateBudget::start(SteadyTime) { ++in_flight_; }

void RateBudget::finish(SteadyTime now) {
  if (in_flight_ > 0) --in_flight_;
  // Answers come in time order (one monotonic clock), so the deque stays sorted.
  finished_.push_back(std::max(now, finished_.empty() ? now : finished_.back()));
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

void RateBudget::pause_until(SteadyTime until) { paused_until_ = std::max(paused_until_, until); }

std::optional<SteadyTime> RateBudget::paused_until(SteadyTime now) const {
  if (now < paused_until_) return paused_until_;
  return std::nullopt;
}

} // namespace cltoken

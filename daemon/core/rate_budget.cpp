#include "core/rate_budget.hpp"

#include <algorithm>

namespace cltoken {

void RateBudget::prune(SteadyTime now) {
  while (!sent_.empty() && sent_.front() + window_ <= now) sent_.pop_front();
}

bool RateBudget::available(SteadyTime now) {
  prune(now);
  return now >= paused_until_ && sent_.size() < limit_;
}

void RateBudget::record(SteadyTime now) { sent_.push_back(now); }

SteadyTime RateBudget::next_slot(SteadyTime now) {
  prune(now);
  SteadyTime t = std::max(now, paused_until_);
  if (sent_.size() >= limit_) {
    // The oldest request that must leave the window before one more fits.
    t = std::max(t, sent_[sent_.size() - limit_] + window_);
  }
  return t;
}

unsigned RateBudget::used(SteadyTime now) {
  prune(now);
  return static_cast<unsigned>(sent_.size());
}

void RateBudget::pause_until(SteadyTime until) { paused_until_ = std::max(paused_until_, until); }

std::optional<SteadyTime> RateBudget::paused_until(SteadyTime now) const {
  if (now < paused_until_) return paused_until_;
  return std::nullopt;
}

} // namespace cltoken

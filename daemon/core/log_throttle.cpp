#include "core/log_throttle.hpp"

namespace cltoken {

LogThrottle::Verdict LogThrottle::admit(SteadyTime now) {
  Verdict v;
  if (!started_ || now - window_start_ >= window_) {
    if (in_window_ > burst_) v.suppressed = in_window_ - burst_;
    started_ = true;
    window_start_ = now;
    in_window_ = 0;
  }
  v.log = ++in_window_ <= burst_;
  return v;
}

} // namespace cltoken

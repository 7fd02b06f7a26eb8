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

LogThrottle::Verdict PeerLogThrottle::admit(uid_t uid, SteadyTime now) {
  if (peers_.size() > prune_above)
    std::erase_if(peers_, [&](const auto& p) { return p.first != uid && now - p.second.last >= window_; });
  auto it = peers_.try_emplace(uid, Peer{LogThrottle(burst_, window_), now}).first;
  it->second.last = now;
  return it->second.throttle.admit(now);
}

} // namespace cltoken

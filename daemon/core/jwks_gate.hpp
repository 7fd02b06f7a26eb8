#pragma once
// When the daemon may ask the auth server for its key set again. Key-set requests do not
// spend the token budget, so they have their own limit: none closer than min_interval to
// the previous one, whoever asks (a token with an unknown kid, a flood of them on
// POST /v1/verify, or a key rotation). Time is passed in.
#include <optional>

#include "core/clock.hpp"

namespace cltoken {

class JwksGate {
public:
  explicit JwksGate(Seconds min_interval) : min_interval_(min_interval) {}

  void set_min_interval(Seconds s) { min_interval_ = s; }
  /// True when a request may start at `now`.
  [[nodiscard]] bool may_fetch(SteadyTime now) const { return !last_ || now >= *last_ + min_interval_; }
  /// When the next request may start (now when it may).
  [[nodiscard]] SteadyTime next_fetch(SteadyTime now) const { return may_fetch(now) ? now : *last_ + min_interval_; }
  /// A request started at `now`.
  void started(SteadyTime now) { last_ = now; }
  /// Forgets the last request (a new auth server: its keys are wanted at once).
  void reset() { last_.reset(); }

private:
  Seconds min_interval_;
  std::optional<SteadyTime> last_;
};

} // namespace cltoken

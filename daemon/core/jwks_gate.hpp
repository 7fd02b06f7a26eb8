#pragma once
// When the daemon may ask the auth server for its key set again. Key-set requests do not
// spend the token budget, so they have their own limit: none closer than min_interval to
// the previous one, whoever asks (a token with an unknown kid, a flood of them on
// POST /v1/verify, or a key rotation). And when the set in hand is too old to trust
// without asking: a key the auth server withdrew (a leaked one) must stop verifying
// within max_age, not at the next restart. Time is passed in.
#include <optional>

#include "core/clock.hpp"

namespace cltoken {

class JwksGate {
public:
  explicit JwksGate(Seconds min_interval, Seconds max_age = Seconds(86400)) : min_interval_(min_interval), max_age_(max_age) {}

  void set_min_interval(Seconds s) { min_interval_ = s; }
  void set_max_age(Seconds s) { max_age_ = s; }
  /// True when a request may start at `now`.
  [[nodiscard]] bool may_fetch(SteadyTime now) const { return !last_ || now >= *last_ + min_interval_; }
  /// When the next request may start (now when it may).
  [[nodiscard]] SteadyTime next_fetch(SteadyTime now) const { return may_fetch(now) ? now : *last_ + min_interval_; }
  /// A request started at `now`.
  void started(SteadyTime now) { last_ = now; }
  /// The set in hand was published by the auth server at `at` (fetched then, or kept in
  /// the store since then).
  void obtained(SteadyTime at) { obtained_ = at; }
  /// The set in hand is older than max_age: the next verification asks for it again, when
  /// may_fetch() allows (a failed request keeps the old set until the next try).
  [[nodiscard]] bool stale(SteadyTime now) const { return obtained_ && now >= *obtained_ + max_age_; }
  /// Forgets the last request and the set's age (a new auth server: its keys are wanted
  /// at once).
  void reset() {
    last_.reset();
    obtained_.reset();
  }

private:
  Seconds min_interval_;
  Seconds max_age_;
  std::optional<SteadyTime> last_;
  std::optional<SteadyTime> obtained_;
};

} // namespace cltoken

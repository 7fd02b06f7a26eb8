#pragma once
// Per-peer (uid) limit on new customer sessions (logins, and adopted tokens): a token
// bucket per uid, so one local process cannot guess passwords at the speed of the socket,
// spend the whole host's upstream budget on logins, nor flood the session table with
// adopted tokens. Plain arithmetic, no I/O.
#include <map>
#include <optional>

#include <sys/types.h>

#include "core/clock.hpp"

namespace cltoken {

class LoginLimiter {
public:
  /// `burst` logins at once, then one every `interval`.
  LoginLimiter(unsigned burst, Millis interval) : burst_(burst), interval_(interval) {}
  /// A new rate (config reload); buckets keep their state and refill at the new rate.
  void set_rate(unsigned burst, Millis interval) {
    burst_ = burst;
    interval_ = interval;
  }

  /// Takes one login for `uid` at `now`: nullopt when admitted, else how long until the
  /// next one would be (for Retry-After).
  std::optional<Millis> admit(uid_t uid, SteadyTime now);

  /// uids currently tracked (a full bucket is forgotten).
  [[nodiscard]] std::size_t tracked() const { return buckets_.size(); }

private:
  struct Bucket {
    double tokens;
    SteadyTime at;
  };
  [[nodiscard]] double refill(const Bucket& b, SteadyTime now) const;

  unsigned burst_;
  Millis interval_;
  std::map<uid_t, Bucket> buckets_;
};

} // namespace cltoken

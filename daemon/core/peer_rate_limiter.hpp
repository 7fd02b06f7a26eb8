#pragma once
// A per-peer (uid) token bucket: `burst` at once, then one every `interval`. It bounds what
// one local process can make the daemon do for it: new customer sessions (logins and
// adopted tokens: no guessing passwords at the speed of the socket, no flooding the session
// table) and upstream requests caused on demand (invalidations), so that no peer can spend
// the host's whole upstream budget. Plain arithmetic, no I/O.
#include <map>
#include <optional>

#include <sys/types.h>

#include "core/clock.hpp"

namespace cltoken {

class PeerRateLimiter {
public:
  /// `burst` at once, then one every `interval`.
  PeerRateLimiter(unsigned burst, Millis interval) : burst_(burst), interval_(interval) {}
  /// A new rate (config reload); buckets keep their state and refill at the new rate.
  void set_rate(unsigned burst, Millis interval) {
    burst_ = burst;
    interval_ = interval;
  }

  /// Takes one for `uid` at `now`: nullopt when admitted, else how long until the next
  /// one would be (for Retry-After).
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

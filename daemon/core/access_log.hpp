#pragma once
// The access log ([log] access = true): one line per token handed out or refused, with the
// credential, the peer's uid and unit, and the outcome; never the token. Lines are
// throttled so that a flood of requests cannot fill the disk: each uid gets a tenth of
// `per_minute` lines a minute (so one busy or hostile peer cannot crowd out the others),
// all together `per_minute`; what is left out is counted in one line when the minute ends.
// Refusals (403) are the "access denied" warnings, which are written whether or not the
// access log is on (server/handler.cpp). Pure logic on an injected time.
#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/log_throttle.hpp"
#include "core/principal.hpp"

namespace cltoken {

/// "served" 200/201, "forbidden" 403, "unavailable" 503, "rate_limited" 429, "not_found"
/// 404 and 410, "rejected" 401, "bad_request" other 4xx, "failed" the rest.
[[nodiscard]] std::string_view access_outcome(unsigned status);

/// "-" or the unit's name: what log lines print for a peer's unit.
[[nodiscard]] std::string_view unit_text(const PeerIdentity& peer);

/// "credential NAME: access route=ROUTE uid=U gid=G pid=P unit=UNIT outcome=OUTCOME status=S"
/// (core/log_format.hpp lifts NAME into the JSON format's "credential" field).
[[nodiscard]] std::string access_line(std::string_view credential, std::string_view route, const PeerIdentity& peer,
                                      unsigned status);

class AccessLog {
public:
  explicit AccessLog(unsigned per_minute = 600);

  struct Verdict {
    bool log = false;               ///< write this request's line
    std::vector<std::string> notes; ///< lines about lines left out: write them first (warning)
  };

  /// Call once per token request of `uid`.
  Verdict admit(uid_t uid, SteadyTime now);

  [[nodiscard]] unsigned per_minute() const { return per_minute_; }

private:
  unsigned per_minute_;
  PeerLogThrottle per_peer_;
  LogThrottle all_;
};

} // namespace cltoken

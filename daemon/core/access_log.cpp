#include "core/access_log.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace cltoken {

std::string_view access_outcome(unsigned status) {
  switch (status) {
  case 200:
  case 201: return "served";
  case 401: return "rejected";
  case 403: return "forbidden";
  case 404:
  case 410: return "not_found";
  case 429: return "rate_limited";
  case 503: return "unavailable";
  default: return status >= 400 && status < 500 ? "bad_request" : "failed";
  }
}

std::string_view unit_text(const PeerIdentity& peer) { return peer.unit ? std::string_view(peer.unit->name) : "-"; }

std::string access_line(std::string_view credential, std::string_view route, const PeerIdentity& peer, unsigned status) {
  return fmt::format("credential {}: access route={} uid={} gid={} pid={} unit={} outcome={} status={}", credential, route,
                     peer.uid, peer.gid, peer.pid, unit_text(peer), access_outcome(status), status);
}

AccessLog::AccessLog(unsigned per_minute)
    : per_minute_(std::max(1u, per_minute)), per_peer_(std::max(1u, per_minute_ / 10), Seconds(60)),
      all_(per_minute_, Seconds(60)) {}

AccessLog::Verdict AccessLog::admit(uid_t uid, SteadyTime now) {
  Verdict v;
  auto mine = per_peer_.admit(uid, now);
  if (mine.suppressed > 0)
    v.notes.push_back(fmt::format("{} access log lines of uid {} were not logged (log.access_per_minute)", mine.suppressed, uid));
  if (!mine.log) return v;
  // Only lines a peer's own share admits count against the total.
  auto total = all_.admit(now);
  if (total.suppressed > 0)
    v.notes.push_back(fmt::format("{} access log lines were not logged (log.access_per_minute)", total.suppressed));
  v.log = total.log;
  return v;
}

} // namespace cltoken

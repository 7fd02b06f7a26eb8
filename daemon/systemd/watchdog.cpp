#include "systemd/watchdog.hpp"

#include <fmt/format.h>

namespace cltoken::systemd {

SteadyClock::duration fetch_bound(const UpstreamConfig& upstream) { return upstream.request_timeout + scheduler_slack; }

std::optional<std::string> refresh_loop_stall(const Broker::Progress& progress, SteadyTime now, SteadyClock::duration bound) {
  if (!progress.running) return "the token scheduler is not running";
  if (now > progress.next_wake + scheduler_slack)
    return fmt::format("the token scheduler should have run {} s ago",
                       std::chrono::duration_cast<Seconds>(now - progress.next_wake).count());
  if (progress.oldest_fetch && now > *progress.oldest_fetch + bound)
    return fmt::format("a token request has been in flight for {} s, past every upstream deadline",
                       std::chrono::duration_cast<Seconds>(now - *progress.oldest_fetch).count());
  return std::nullopt;
}

} // namespace cltoken::systemd

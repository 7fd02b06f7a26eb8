#pragma once
// The watchdog's question: is the refresh loop making progress? An event loop that runs
// is not enough (a scheduler coroutine that stopped waking, or a fetch stuck past every
// deadline, would leave tokens to expire while the daemon looks alive). When the answer
// is no, the heartbeat stops WATCHDOG=1 and systemd restarts the service.
#include <optional>
#include <string>

#include "broker/broker.hpp"
#include "core/config.hpp"

namespace cltoken::systemd {

/// How late the scheduler may wake before it counts as stuck. Generous: a busy 2-core
/// machine must not get a healthy daemon killed.
constexpr SteadyClock::duration scheduler_slack = Seconds(10);

/// The longest a fetch can take while the upstream client keeps its deadlines:
/// request_timeout bounds the whole request, connection set-up included; plus the slack.
[[nodiscard]] SteadyClock::duration fetch_bound(const UpstreamConfig& upstream);

/// Why the refresh loop is stuck, or nothing when it is making progress.
[[nodiscard]] std::optional<std::string> refresh_loop_stall(const Broker::Progress& progress, SteadyTime now,
                                                            SteadyClock::duration fetch_bound);

} // namespace cltoken::systemd

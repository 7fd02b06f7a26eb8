#pragma once
// The systemd side of the daemon: readiness and status notifications (Type=notify) and the
// listening socket handed over by socket activation. Both are no-ops outside systemd.
#include <chrono>
#include <optional>
#include <string>

#include "core/clock.hpp"

namespace cltoken::systemd {

/// Sends a notification ("READY=1", "STATUS=...") if $NOTIFY_SOCKET is set.
void notify(const std::string& state);

/// "RELOADING=1" with the MONOTONIC_USEC= that systemd 253+ requires to match a reload it
/// asked for (Type=notify-reload); older managers ignore the extra field.
[[nodiscard]] std::string reloading_message(SteadyTime now);

/// The first socket passed by systemd (LISTEN_FDS), if any; clears the environment so
/// children do not inherit it. Throws std::runtime_error when more than one is passed.
std::optional<int> listen_fd();

/// Watchdog interval requested by systemd (WATCHDOG_USEC), if any.
std::optional<std::chrono::microseconds> watchdog_interval();

} // namespace cltoken::systemd

#include "systemd/notify.hpp"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include <stdexcept>

#include <spdlog/spdlog.h>

namespace cltoken::systemd {

void notify(const std::string& state) {
  int rc = sd_notify(0, state.c_str());
  if (rc < 0) spdlog::debug("sd_notify failed: {}", rc);
}

std::string reloading_message(SteadyTime now) {
  // libstdc++'s steady_clock is CLOCK_MONOTONIC, the clock systemd compares against.
  const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
}

std::optional<int> listen_fd() {
  int n = sd_listen_fds(1);
  if (n <= 0) return std::nullopt;
  if (n > 1) throw std::runtime_error("systemd passed " + std::to_string(n) + " sockets; cl-tokend listens on exactly one");
  const int fd = SD_LISTEN_FDS_START;
  if (sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) <= 0)
    throw std::runtime_error("the socket passed by systemd is not a listening Unix stream socket");
  return fd;
}

std::optional<std::chrono::microseconds> watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) return std::chrono::microseconds(usec);
  return std::nullopt;
}

} // namespace cltoken::systemd

#include "fake_daemon.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace ctl_test {
namespace {

/// How long the server waits for a client to speak; a bound for a broken test, not a pace.
constexpr int io_wait_ms = 10'000;

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

/// True when `fd` became readable, false when `stop` did (or the wait ran out).
bool readable(int fd, int stop, int wait_ms) {
  pollfd fds[2] = {{fd, POLLIN, 0}, {stop, POLLIN, 0}};
  const int ready = ::poll(fds, 2, wait_ms);
  return ready > 0 && fds[1].revents == 0 && fds[0].revents != 0;
}

/// Bytes of a complete request in `data`, or 0 while headers or body are still missing.
std::size_t complete_request(const std::string& data) {
  const auto end = data.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  std::size_t length = 0;
  const std::string headers = data.substr(0, end);
  for (std::size_t at = 0; at < headers.size();) {
    const auto line_end = headers.find("\r\n", at);
    const std::string line = headers.substr(at, line_end == std::string::npos ? std::string::npos : line_end - at);
    if (::strncasecmp(line.c_str(), "content-length:", 15) == 0) length = std::strtoul(line.c_str() + 15, nullptr, 10);
    if (line_end == std::string::npos) break;
    at = line_end + 2;
  }
  const std::size_t total = end + 4 + length;
  return data.size() >= total ? total : 0;
}

} // namespace

std::string http_response(int status, const std::string& body, const std::string& extra_headers) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers +
         "\r\n" + body;
}

FakeDaemon::FakeDaemon(std::string response, Behaviour behaviour) : response_(std::move(response)), behaviour_(behaviour) {
  // Short and private: socket paths have at most 107 bytes, and tests run in parallel.
  char directory[] = "/tmp/ctl-test-XXXXXX";
  if (::mkdtemp(directory) == nullptr) fail("mkdtemp");
  directory_ = directory;
  socket_path_ = directory_ + "/d.sock";

  listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener_ < 0) fail("socket");
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path_.c_str(), sizeof(address.sun_path) - 1);
  if (::bind(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) fail("bind");
  if (::listen(listener_, 16) != 0) fail("listen");
  if (::pipe2(stop_, O_CLOEXEC) != 0) fail("pipe2");
  thread_ = std::thread([this] { serve(); });
}

FakeDaemon::~FakeDaemon() {
  ::close(stop_[1]); // wakes every poll in the thread
  thread_.join();
  ::close(stop_[0]);
  ::close(listener_);
  ::unlink(socket_path_.c_str());
  ::rmdir(directory_.c_str());
}

std::vector<std::string> FakeDaemon::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

void FakeDaemon::serve() {
  while (readable(listener_, stop_[0], -1)) {
    const int connection = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) continue;
    handle(connection);
    ::close(connection);
  }
}

void FakeDaemon::handle(int connection) {
  std::string data;
  std::size_t length = 0;
  while ((length = complete_request(data)) == 0) {
    if (!readable(connection, stop_[0], io_wait_ms)) return;
    char buffer[4096];
    const ssize_t got = ::read(connection, buffer, sizeof buffer);
    if (got <= 0) return;
    data.append(buffer, static_cast<std::size_t>(got));
  }
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(data.substr(0, length));
  }
  switch (behaviour_) {
  case Behaviour::answer:
    for (std::size_t sent = 0; sent < response_.size();) {
      const ssize_t put = ::send(connection, response_.data() + sent, response_.size() - sent, MSG_NOSIGNAL);
      if (put <= 0) return;
      sent += static_cast<std::size_t>(put);
    }
    return;
  case Behaviour::never_answer:
    // Hold the connection until the test ends: the client must give up on its own.
    (void)readable(stop_[0], stop_[0], -1);
    return;
  case Behaviour::hang_up: return;
  }
}

} // namespace ctl_test

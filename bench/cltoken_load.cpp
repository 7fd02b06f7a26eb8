// cltoken-load: a closed-loop HTTP/1.1 load generator for a Unix socket.
//
//   cltoken-load --socket PATH --path /v1/tokens/backoffice [--connections 16]
//                [--duration 10] [--warmup 2] [--body-file F] [--json] [--mark]
//   cltoken-load --socket PATH --hold 1000 [--path P]  (opens idle connections, each served
//                one request if --path is given, and holds them until stdin closes)
//
// Each of N keep-alive connections sends one GET (or POSTs --body-file as JSON), waits for
// the whole answer, checks it is a 200, and sends the next: the offered load follows what the server can do. After the
// warm-up every answer's latency (send to last byte) is recorded; requests/s, p50, p99 and
// p99.9 are printed at the end. Plain epoll on one thread, so the generator is cheap next
// to the server it measures (both share the same 2 cores). --mark prints `measuring` and
// `measured` on lines of their own when the measured window opens and closes, so that a
// script can read the server's CPU time over exactly that window.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string socket;
  std::string path = "/";
  int connections = 16;
  double duration = 10;
  double warmup = 2;
  bool json = false;
  bool mark = false;
  int hold = 0;
  bool path_set = false;
  std::string body; ///< --body-file: sent as a POST (application/json) instead of a GET
};

/// The request every connection repeats: a GET, or a POST of the --body-file.
std::string request_of(const Options& o) {
  if (o.body.empty()) return "GET " + o.path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  return "POST " + o.path +
         " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(o.body.size()) +
         "\r\n\r\n" + o.body;
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "cltoken-load: %s\nusage: cltoken-load --socket PATH [--path P] [--connections N] [--duration S] "
               "[--warmup S] [--body-file F] [--json] [--mark]\n       cltoken-load --socket PATH --hold N\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage("missing value");
      return argv[++i];
    };
    if (a == "--socket") o.socket = value();
    else if (a == "--path") {
      o.path = value();
      o.path_set = true;
    } else if (a == "--connections") o.connections = std::atoi(value());
    else if (a == "--duration") o.duration = std::atof(value());
    else if (a == "--warmup") o.warmup = std::atof(value());
    else if (a == "--hold") o.hold = std::atoi(value());
    else if (a == "--json") o.json = true;
    else if (a == "--mark") o.mark = true;
    else if (a == "--body-file") {
      std::FILE* f = std::fopen(value(), "rb");
      if (f == nullptr) usage("cannot read --body-file");
      char buf[4096];
      for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) o.body.append(buf, n);
      std::fclose(f);
    } else usage("unknown option");
  }
  if (o.socket.empty()) usage("--socket is required");
  if (o.connections < 1 && o.hold < 1) usage("--connections must be at least 1");
  return o;
}

int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return -1;
  std::memcpy(addr.sun_path, path.data(), path.size());
  // A Unix stream connect completes at once or fails (EAGAIN: backlog full).
  for (int attempt = 0; attempt < 1000; ++attempt) {
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
    if (errno != EAGAIN) break;
    ::usleep(1000);
  }
  ::close(fd);
  return -1;
}

/// One connection's state: what was sent, and the answer read so far.
struct Conn {
  int fd = -1;
  std::string in;
  std::size_t sent = 0;
  Clock::time_point started;
};

/// Parses one whole answer at the front of `in`: returns its length (0: incomplete,
/// SIZE_MAX: unparseable) and its status. Only Content-Length framing is expected.
std::size_t answer_length(const std::string& in, int& status) {
  auto end = in.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  if (in.size() < 12 || in.compare(0, 5, "HTTP/") != 0) return SIZE_MAX;
  status = std::atoi(in.c_str() + 9);
  std::size_t length = 0;
  // Header names are case-insensitive: nginx says Content-Length, so does Beast.
  std::string_view head(in.data(), end);
  std::size_t pos = 0;
  bool found = false;
  while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
    pos += 2;
    if (head.size() - pos > 15 && strncasecmp(head.data() + pos, "content-length:", 15) == 0) {
      length = std::strtoul(head.data() + pos + 15, nullptr, 10);
      found = true;
      break;
    }
  }
  if (!found) return SIZE_MAX;
  std::size_t total = end + 4 + length;
  return in.size() >= total ? total : 0;
}

double percentile(const std::vector<std::uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto idx = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(idx, sorted.size() - 1)] / 1000.0; // ns -> µs
}

int hold(const Options& o) {
  std::vector<int> fds;
  for (int i = 0; i < o.hold; ++i) {
    int fd = connect_unix(o.socket);
    if (fd < 0) {
      std::fprintf(stderr, "cltoken-load: connect %d failed: %s\n", i, std::strerror(errno));
      return 1;
    }
    fds.push_back(fd);
  }
  if (o.path_set) {
    // One request on each first, so every connection holds what a served one keeps.
    const std::string request = request_of(o);
    for (int fd : fds) {
      if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) return 1;
      std::string in;
      char buf[16384];
      int status = 0;
      while (answer_length(in, status) == 0) {
        pollfd p{fd, POLLIN, 0};
        ::poll(&p, 1, 10000);
        ssize_t r = ::read(fd, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EAGAIN)) return 1;
        if (r > 0) in.append(buf, static_cast<std::size_t>(r));
      }
      if (status != 200) {
        std::fprintf(stderr, "cltoken-load: answer %d while opening held connections\n", status);
        return 1;
      }
    }
  }
  std::printf("holding %d\n", o.hold);
  std::fflush(stdout);
  char c;
  while (::read(0, &c, 1) > 0) {}
  for (int fd : fds) ::close(fd);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (o.hold > 0) return hold(o);

  const std::string request = request_of(o);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<Conn> conns(static_cast<std::size_t>(o.connections));
  for (std::size_t i = 0; i < conns.size(); ++i) {
    conns[i].fd = connect_unix(o.socket);
    if (conns[i].fd < 0) {
      std::fprintf(stderr, "cltoken-load: cannot connect to %s: %s\n", o.socket.c_str(), std::strerror(errno));
      return 1;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
  }

  std::vector<std::uint32_t> latencies;
  latencies.reserve(1 << 20);
  std::uint64_t ok = 0, errors = 0, reconnects = 0;
  const auto t0 = Clock::now();
  const auto measure_from = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
  const auto stop_at = measure_from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration));

  auto send = [&](Conn& c) {
    c.started = Clock::now();
    // Requests are tiny: one write fits the socket buffer, or the connection is broken.
    ssize_t n = ::write(c.fd, request.data(), request.size());
    return n == static_cast<ssize_t>(request.size());
  };
  auto reopen = [&](std::size_t i) {
    Conn& c = conns[i];
    ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.in.clear();
    c.fd = connect_unix(o.socket);
    ++reconnects;
    if (c.fd < 0) return false;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    return send(c);
  };

  for (auto& c : conns)
    if (!send(c)) ++errors;

  std::vector<epoll_event> events(conns.size());
  char buf[16384];
  bool stopping = false;
  bool measuring = false;
  auto mark = [&](const char* line) {
    if (!o.mark) return;
    std::fputs(line, stdout);
    std::fflush(stdout);
  };
  std::size_t in_flight = conns.size();
  while (in_flight > 0) {
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1000);
    if (n < 0 && errno == EINTR) continue;
    const auto now = Clock::now();
    if (!measuring && now >= measure_from) {
      measuring = true;
      mark("measuring\n");
    }
    if (now >= stop_at && !stopping) {
      stopping = true; // let in-flight answers finish, send no more
      mark("measured\n");
    }
    for (int k = 0; k < n; ++k) {
      const std::size_t i = events[k].data.u64;
      Conn& c = conns[i];
      ssize_t r = ::read(c.fd, buf, sizeof buf);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        ++errors; // the server closed a keep-alive connection: count it, carry on
        if (stopping || !reopen(i)) {
          ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
          --in_flight;
        }
        continue;
      }
      c.in.append(buf, static_cast<std::size_t>(r));
      int status = 0;
      std::size_t len = answer_length(c.in, status);
      if (len == 0) continue;
      const auto done = Clock::now();
      if (len == SIZE_MAX) {
        ++errors;
        c.in.clear();
      } else {
        c.in.erase(0, len);
        if (c.started >= measure_from && done <= stop_at) {
          if (status == 200) {
            ++ok;
            latencies.push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(done - c.started).count(), UINT32_MAX)));
          } else {
            ++errors;
          }
        } else if (status != 200) {
          ++errors;
        }
      }
      if (stopping) {
        ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        --in_flight;
      } else if (!send(c)) {
        ++errors;
        if (!reopen(i)) {
          ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
          --in_flight;
        }
      }
    }
    if (n == 0 && Clock::now() > stop_at + std::chrono::seconds(5)) break; // a server that stopped answering
  }
  for (auto& c : conns)
    if (c.fd >= 0) ::close(c.fd);

  std::sort(latencies.begin(), latencies.end());
  const double rps = static_cast<double>(ok) / o.duration;
  const double p50 = percentile(latencies, 0.50), p99 = percentile(latencies, 0.99), p999 = percentile(latencies, 0.999);
  if (o.json) {
    std::printf("{\"connections\":%d,\"duration_s\":%.3f,\"requests\":%llu,\"errors\":%llu,\"reconnects\":%llu,"
                "\"rps\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f}\n",
                o.connections, o.duration, static_cast<unsigned long long>(ok), static_cast<unsigned long long>(errors),
                static_cast<unsigned long long>(reconnects), rps, p50, p99, p999);
  } else {
    std::printf("%d connections, %.1f s: %llu answers 200, %llu errors\n%.0f requests/s, latency p50 %.1f us, "
                "p99 %.1f us, p99.9 %.1f us\n",
                o.connections, o.duration, static_cast<unsigned long long>(ok), static_cast<unsigned long long>(errors), rps, p50,
                p99, p999);
  }
  return errors == 0 ? 0 : 3;
}

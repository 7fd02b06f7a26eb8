// floor-server: the least an HTTP/1.1 server on a Unix socket can do per request, as the
// floor bench/run.py measures cl-tokend and nginx against.
//
//   floor-server --socket PATH --answer-file FILE
//
// One thread on level-triggered epoll. Every request on a keep-alive connection is answered
// with the bytes of FILE (a whole HTTP answer, status line, headers and body, as recorded
// from cl-tokend), sent as they are. Nothing else: no routing, no header beyond finding
// where a request ends (the blank line, then Content-Length bytes of body if it has one),
// no timers, no logging. Pipelined requests are answered together in one sendmsg; a
// request split over several reads is completed by the next ones. A request whose head does
// not fit in the buffer, or that uses chunked framing, closes the connection: the load
// generator never sends either.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <strings.h>

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "floor-server: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

/// The whole answer, read once at start.
struct Answer {
  char* data = nullptr;
  size_t size = 0;
};

Answer read_answer(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open --answer-file");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) die("empty --answer-file");
  Answer a;
  a.size = static_cast<size_t>(st.st_size);
  a.data = static_cast<char*>(std::malloc(a.size));
  if (a.data == nullptr) die("malloc");
  for (size_t got = 0; got < a.size;) {
    ssize_t n = ::read(fd, a.data + got, a.size - got);
    if (n <= 0) die("read --answer-file");
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  return a;
}

constexpr size_t kBuffer = 8192; ///< a request head must fit; the load generator's is ~60 bytes
constexpr int kMaxIov = 64;      ///< answers sent in one sendmsg when requests were pipelined

struct Conn {
  int fd = -1;
  char in[kBuffer];
  size_t have = 0;       ///< bytes in `in` not consumed yet
  size_t scanned = 0;    ///< how far `in` was searched for the end of the head
  size_t skip_body = 0;  ///< body bytes of the current request still to be discarded
  bool in_body = false;  ///< the head of the current request is consumed, its body is not
  size_t owed = 0;       ///< answers due, in order
  size_t first_sent = 0; ///< bytes of the first due answer already sent
  bool want_write = false;
};

/// Content-Length of a request head (0 if absent); false for framing it does not handle.
bool body_length(const char* head, size_t len, size_t& length) {
  length = 0;
  for (size_t i = 0; i + 2 <= len;) {
    const char* eol = static_cast<const char*>(std::memchr(head + i, '\n', len - i));
    size_t line_end = eol != nullptr ? static_cast<size_t>(eol - head) : len;
    const char* line = head + i;
    size_t n = line_end - i;
    if (n > 15 && strncasecmp(line, "content-length:", 15) == 0) {
      length = std::strtoul(line + 15, nullptr, 10);
    } else if (n > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
      return false;
    }
    i = line_end + 1;
  }
  return true;
}

/// Counts every whole request in `c.in`, drops their bytes; false: close the connection.
bool consume(Conn& c) {
  size_t pos = 0;
  for (;;) {
    if (c.in_body) {
      size_t take = c.have - pos < c.skip_body ? c.have - pos : c.skip_body;
      pos += take;
      c.skip_body -= take;
      if (c.skip_body > 0) break;
      c.in_body = false;
      ++c.owed;
    }
    // The head ends at the first blank line; search from where the last read left off.
    size_t from = c.scanned > pos + 3 ? c.scanned - 3 : pos;
    const char* end = nullptr;
    for (size_t i = from; i + 4 <= c.have; ++i) {
      if (c.in[i] == '\r' && std::memcmp(c.in + i, "\r\n\r\n", 4) == 0) {
        end = c.in + i;
        break;
      }
    }
    if (end == nullptr) {
      c.scanned = c.have;
      break;
    }
    size_t head_len = static_cast<size_t>(end - (c.in + pos)) + 4;
    if (!body_length(c.in + pos, head_len, c.skip_body)) return false;
    pos += head_len;
    c.scanned = pos;
    c.in_body = true;
  }
  if (pos > 0) {
    std::memmove(c.in, c.in + pos, c.have - pos);
    c.have -= pos;
    c.scanned = c.scanned >= pos ? c.scanned - pos : 0;
  }
  return c.have < kBuffer; // a head that fills the buffer will never end in it
}

/// Sends what is owed, as much as the socket takes. False: the peer is gone.
bool flush(Conn& c, const Answer& a) {
  while (c.owed > 0) {
    iovec iov[kMaxIov];
    int n = 0;
    for (size_t i = 0; i < c.owed && n < kMaxIov; ++i, ++n) {
      size_t skip = i == 0 ? c.first_sent : 0;
      iov[n].iov_base = a.data + skip;
      iov[n].iov_len = a.size - skip;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    ssize_t sent = ::sendmsg(c.fd, &msg, MSG_NOSIGNAL);
    if (sent < 0) return errno == EAGAIN;
    size_t s = static_cast<size_t>(sent) + c.first_sent;
    c.owed -= s / a.size;
    c.first_sent = s % a.size;
  }
  return true;
}

void set_events(int ep, Conn& c, bool want_write) {
  if (c.want_write == want_write) return;
  c.want_write = want_write;
  epoll_event ev{};
  ev.events = want_write ? EPOLLOUT : EPOLLIN;
  ev.data.ptr = &c;
  ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
}

void close_conn(int ep, Conn* c) {
  ::epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, nullptr);
  ::close(c->fd);
  delete c;
}

int listen_on(const char* path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (std::strlen(path) >= sizeof(addr.sun_path)) {
    std::fprintf(stderr, "floor-server: socket path too long\n");
    std::exit(1);
  }
  std::memcpy(addr.sun_path, path, std::strlen(path));
  // An existing path is an error (bind: EADDRINUSE): the caller gives a fresh one.
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) die("bind");
  if (::listen(fd, 4096) != 0) die("listen");
  return fd;
}

} // namespace

int main(int argc, char** argv) {
  const char* socket_path = nullptr;
  const char* answer_path = nullptr;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--socket") == 0) socket_path = argv[i + 1];
    else if (std::strcmp(argv[i], "--answer-file") == 0) answer_path = argv[i + 1];
  }
  if (socket_path == nullptr || answer_path == nullptr) {
    std::fprintf(stderr, "usage: floor-server --socket PATH --answer-file FILE\n");
    return 2;
  }
  const Answer answer = read_answer(answer_path);
  int lfd = listen_on(socket_path);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr; // the listener
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0) die("epoll_ctl");

  epoll_event events[256];
  for (;;) {
    int n = ::epoll_wait(ep, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int k = 0; k < n; ++k) {
      if (events[k].data.ptr == nullptr) {
        for (int fd; (fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          auto* c = new Conn;
          c->fd = fd;
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.ptr = c;
          if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) close_conn(ep, c);
        }
        continue;
      }
      Conn& c = *static_cast<Conn*>(events[k].data.ptr);
      if (c.want_write) {
        // Answers are pending: read nothing more until they are sent (the client is slow).
        if (!flush(c, answer)) {
          close_conn(ep, &c);
          continue;
        }
        set_events(ep, c, c.owed > 0);
        continue;
      }
      // One read per readiness: level-triggered epoll reports what is left next time.
      ssize_t r = ::recv(c.fd, c.in + c.have, kBuffer - c.have, 0);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        close_conn(ep, &c);
        continue;
      }
      c.have += static_cast<size_t>(r);
      if (!consume(c) || !flush(c, answer)) {
        close_conn(ep, &c);
        continue;
      }
      set_events(ep, c, c.owed > 0);
    }
  }
}

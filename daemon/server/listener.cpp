#include "server/listener.hpp"

#include <grp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <boost/asio/co_spawn.hpp>
#include "async/clock_timer.hpp"
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "async/spawn.hpp"
#include "core/connection_admission.hpp"
#include "core/path_trust.hpp"
#include "server/connection.hpp"
#include "server/peer.hpp"
#include "server/peer_unit.hpp"

namespace cltoken {

namespace asio = boost::asio;
using asio::local::stream_protocol;

namespace {

/// Is anybody accepting on this socket path? Only a refused connect proves it is stale.
bool socket_is_live(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return true; // cannot tell: be safe and keep it
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::close(fd);
  return rc == 0 || err != ECONNREFUSED;
}

/// The socket's folder, and every folder above it, must be one only the daemon (or root)
/// can change (core/path_trust.hpp): in a folder others may write to, another user could
/// swap our socket for theirs between bind and chmod, or after, and collect the requests,
/// passwords included (and so nothing else protects the path).
void check_folder(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string folder = slash == 0 ? "/" : path.substr(0, slash);
  struct stat st {};
  if (::stat(folder.c_str(), &st) != 0)
    throw std::runtime_error(fmt::format("socket folder {}: {} (create it owned by the daemon's user, mode 0755; "
                                         "under systemd, RuntimeDirectory=cl-tokend)",
                                         folder, std::strerror(errno)));
  if (auto why = check_path_trust(path, "socket", /*check_file=*/false)) throw std::runtime_error(*why);
}

void prepare_path(const std::string& path) {
  check_folder(path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw std::runtime_error(fmt::format("cannot inspect socket path {}: {}", path, std::strerror(errno)));
  }
  if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(fmt::format("{} exists and is not a socket; refusing to replace it", path));
  if (socket_is_live(path)) throw std::runtime_error(fmt::format("another process is already listening on {}", path));
  if (::unlink(path.c_str()) != 0)
    throw std::runtime_error(fmt::format("cannot remove stale socket {}: {}", path, std::strerror(errno)));
  spdlog::info("removed stale socket {}", path);
}

/// Each connection is a file descriptor: make sure max_connections of them fit under
/// RLIMIT_NOFILE (with room for the upstream, logs and the listener itself), raising the
/// soft limit when the hard one allows. Otherwise accept would fail with EMFILE.
void ensure_fd_room(std::size_t max_connections) {
  constexpr rlim_t reserve = 64;
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t need = static_cast<rlim_t>(max_connections) + reserve;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < need) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max == RLIM_INFINITY ? need : std::min(need, lim.rlim_max);
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < need)
    spdlog::warn("server.max_connections = {} does not fit the open-file limit {} (LimitNOFILE=); connections beyond "
                 "about {} will be refused",
                 max_connections, lim.rlim_cur, lim.rlim_cur > reserve ? lim.rlim_cur - reserve : 0);
}

/// How long to stop accepting after EMFILE/ENFILE: the pending connection stays in the
/// backlog and would fail again at once, so retrying immediately would spin the loop.
constexpr auto accept_pause = std::chrono::milliseconds(100);

} // namespace

Listener::Listener(asio::any_io_executor executor, const ServerConfig& config, Handler& handler, const Clock& clock)
    : executor_(executor), config_(config), handler_(handler), clock_(clock), acceptor_(executor), idle_timer_(executor),
      closed_(executor) {
  prepare_path(config.socket);
  // Create it with no access for anyone, then open it up to socket_mode: there is no
  // moment when the socket is reachable with looser permissions than configured.
  const mode_t old = ::umask(0777);
  boost::system::error_code ec;
  acceptor_.open(stream_protocol(), ec);
  if (!ec) acceptor_.bind(stream_protocol::endpoint(config.socket), ec);
  ::umask(old);
  if (ec) throw std::runtime_error(fmt::format("cannot bind {}: {}", config.socket, ec.message()));
  owns_path_ = true;
  struct stat st {};
  if (::stat(config.socket.c_str(), &st) == 0) socket_file_ = std::pair(st.st_dev, st.st_ino);
  if (config.socket_group && ::chown(config.socket.c_str(), static_cast<uid_t>(-1), *config.socket_group) != 0)
    throw std::runtime_error(
        fmt::format("cannot give {} to group {}: {}", config.socket, config.socket_group_name, std::strerror(errno)));
  if (::chmod(config.socket.c_str(), config.socket_mode) != 0)
    throw std::runtime_error(fmt::format("cannot chmod {}: {}", config.socket, std::strerror(errno)));
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot listen on {}: {}", config.socket, ec.message()));
  apply_limits();
}

Listener::Listener(asio::any_io_executor executor, int listening_fd, const ServerConfig& config, Handler& handler,
                   const Clock& clock)
    : executor_(executor), config_(config), handler_(handler), clock_(clock), acceptor_(executor), idle_timer_(executor),
      closed_(executor) {
  boost::system::error_code ec;
  acceptor_.assign(stream_protocol(), listening_fd, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot adopt the listening socket from systemd: {}", ec.message()));
  apply_limits();
}

void Listener::apply_limits() {
  read_units_ = !unit_principals_unavailable();
  control_.slots.set_limit(config_.max_requests_per_peer);
  idle_timer_.cancel(); // idle_timeout_ms may have changed: the timer sets itself again
  ensure_fd_room(config_.max_connections);
}

void Listener::update(const ServerConfig& config) {
  config_ = config;
  apply_limits();
}

Listener::~Listener() {
  *alive_ = false;
  boost::system::error_code ec;
  acceptor_.close(ec);
  // Remove the socket only if it is still the one we created: after a restart race or a
  // path change on reload, the file there may belong to someone else.
  struct stat st {};
  if (owns_path_ && ::lstat(config_.socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
      socket_file_ == std::pair(st.st_dev, st.st_ino))
    ::unlink(config_.socket.c_str());
}

void Listener::start() {
  asio::co_spawn(executor_, accept_loop(), Rethrow{"the socket listener"});
  asio::co_spawn(executor_, idle_timer(), Rethrow{"the idle-connection timer"});
}

asio::awaitable<void> Listener::wait_closed(SteadyTime until) {
  while (connections_ > 0 && clock_.now() < until) {
    closed_.expires_at(until);
    co_await closed_.async_wait(use_tuple);
  }
}

asio::awaitable<void> Listener::idle_timer() {
  auto alive = alive_;
  for (;;) {
    // Waits for the oldest idle connection's timeout or, with none idle, one timeout from
    // now: a connection that starts waiting later times out later than that, so a new
    // idle connection never needs to wake the timer (which would cost a timer syscall
    // per request on a busy daemon). A reload that changes the timeout cancels the wait.
    idle_timer_.expires_at(control_.idle.next_expiry(config_.idle_timeout).value_or(clock_.now() + config_.idle_timeout));
    co_await idle_timer_.async_wait(use_tuple);
    if (!*alive) co_return;           // the listener is gone; its timer with it
    if (control_.stopping) co_return; // a stop closed the idle connections; the rest close as they finish
    for (auto& close : control_.idle.take_expired(clock_.now(), config_.idle_timeout)) close();
  }
}

void Listener::stop() {
  control_.stop();
  idle_timer_.cancel();
  boost::system::error_code ec;
  acceptor_.cancel(ec);
}

asio::awaitable<void> Listener::accept_loop() {
  while (!control_.stopping) {
    auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
    // A client accepted just as a stop came in is still served: dropping it would close
    // a connection that systemd's socket (or the backlog) had already promised an answer.
    if (ec) {
      if (ec == asio::error::operation_aborted || control_.stopping) break;
      // EMFILE and friends: existing clients are unaffected; log (throttled) and pause
      // accepting briefly rather than spin on a backlog entry that fails again at once.
      auto v = accept_log_.admit(clock_.now());
      if (v.log) spdlog::warn("accept failed: {}", ec.message());
      if (ec == asio::error::no_descriptors || ec.value() == ENFILE || ec == asio::error::no_buffer_space ||
          ec == asio::error::no_memory) {
        ClockTimer pause(executor_, accept_pause);
        co_await pause.async_wait(use_tuple);
      }
      continue;
    }
    std::error_code pec;
    PeerIdentity peer = read_peer_identity(socket.native_handle(), pec);
    if (pec) {
      spdlog::warn("cannot read peer credentials: {}", pec.message());
      continue;
    }
    // Once per connection: every request on it is the same process's.
    if (read_units_) {
      auto lookup = look_up_peer_unit(socket.native_handle(), peer);
      if (!lookup.unit) spdlog::debug("peer uid={} pid={}: unit unknown: {}", peer.uid, peer.pid, lookup.unknown_because);
      peer.unit = std::move(lookup.unit);
    }
    const ConnectionLimits limits{config_.max_connections, config_.max_connections_per_peer, config_.admin_reserved_connections};
    const Admission admission =
        admit_connection(limits, connections_, control_.connections.in_progress(peer.uid), allowed(config_.admin, peer));
    if (admission != Admission::accept) {
      // Over a limit: close at once rather than queue, so the client knows immediately
      // and the connections already open keep their service.
      auto v = control_.refusals.admit(peer.uid, clock_.now());
      if (v.suppressed > 0) spdlog::warn("{} further refused connections of uid {} were not logged", v.suppressed, peer.uid);
      if (v.log)
        spdlog::warn("connection refused: uid={} pid={} holds {} of {} open connections ({})", peer.uid, peer.pid,
                     control_.connections.in_progress(peer.uid), connections_, to_string(admission));
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    auto slot = control_.connections.acquire(peer.uid); // counting only: its limit is 0
    ++connections_;
    handler_.set_connections(connections_);
    auto alive = alive_;
    asio::co_spawn(executor_, run_connection(std::move(socket), peer, config_, handler_, clock_, control_),
                   [this, alive, slot = std::move(slot)](std::exception_ptr p) {
                     if (!*alive) return;
                     --connections_;
                     handler_.set_connections(connections_);
                     if (connections_ == 0) closed_.cancel();
                     log_failure("a connection")(p);
                   });
  }
}

} // namespace cltoken

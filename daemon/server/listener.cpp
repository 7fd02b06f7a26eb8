#include "server/listener.hpp"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server/connection.hpp"
#include "server/peer.hpp"

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

void prepare_path(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw std::runtime_error(fmt::format("cannot inspect socket path {}: {}", path, std::strerror(errno)));
  }
  if (!S_ISSOCK(st.st_mode))
    throw std::runtime_error(fmt::format("{} exists and is not a socket; refusing to replace it", path));
  if (socket_is_live(path))
    throw std::runtime_error(fmt::format("another process is already listening on {}", path));
  if (::unlink(path.c_str()) != 0)
    throw std::runtime_error(fmt::format("cannot remove stale socket {}: {}", path, std::strerror(errno)));
  spdlog::info("removed stale socket {}", path);
}

} // namespace

Listener::Listener(asio::any_io_executor executor, const ServerConfig& config, Handler& handler, const Clock& clock)
    : executor_(executor), config_(config), handler_(handler), clock_(clock), acceptor_(executor) {
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
  if (config.socket_group && ::chown(config.socket.c_str(), static_cast<uid_t>(-1), *config.socket_group) != 0)
    throw std::runtime_error(fmt::format("cannot give {} to group {}: {}", config.socket, config.socket_group_name, std::strerror(errno)));
  if (::chmod(config.socket.c_str(), config.socket_mode) != 0)
    throw std::runtime_error(fmt::format("cannot chmod {}: {}", config.socket, std::strerror(errno)));
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot listen on {}: {}", config.socket, ec.message()));
}

Listener::Listener(asio::any_io_executor executor, int listening_fd, const ServerConfig& config, Handler& handler,
                   const Clock& clock)
    : executor_(executor), config_(config), handler_(handler), clock_(clock), acceptor_(executor) {
  boost::system::error_code ec;
  acceptor_.assign(stream_protocol(), listening_fd, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot adopt the listening socket from systemd: {}", ec.message()));
}

Listener::~Listener() {
  *alive_ = false;
  boost::system::error_code ec;
  acceptor_.close(ec);
  if (owns_path_) ::unlink(config_.socket.c_str());
}

void Listener::start() {
  asio::co_spawn(executor_, accept_loop(), [](std::exception_ptr p) {
    if (p) std::rethrow_exception(p);
  });
}

void Listener::stop() {
  control_.stop();
  boost::system::error_code ec;
  acceptor_.cancel(ec);
}

asio::awaitable<void> Listener::accept_loop() {
  constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
  while (!control_.stopping) {
    auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
    // A client accepted just as a stop came in is still served: dropping it would close
    // a connection that systemd's socket (or the backlog) had already promised an answer.
    if (ec) {
      if (ec == asio::error::operation_aborted || control_.stopping) break;
      // EMFILE and friends: log, and keep going; existing clients are unaffected.
      spdlog::warn("accept failed: {}", ec.message());
      continue;
    }
    if (connections_ >= config_.max_connections) {
      // Over the limit: close at once rather than queue, so the client knows immediately.
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    std::error_code pec;
    PeerIdentity peer = read_peer_identity(socket.native_handle(), pec);
    if (pec) {
      spdlog::warn("cannot read peer credentials: {}", pec.message());
      continue;
    }
    ++connections_;
    handler_.set_connections(connections_);
    auto alive = alive_;
    asio::co_spawn(executor_, run_connection(std::move(socket), peer, config_, handler_, clock_, control_),
                   [this, alive](std::exception_ptr p) {
                     if (!*alive) return;
                     --connections_;
                     handler_.set_connections(connections_);
                     if (p) {
                       try {
                         std::rethrow_exception(p);
                       } catch (const std::exception& e) {
                         spdlog::error("connection ended with an error: {}", e.what());
                       }
                     }
                   });
  }
}

} // namespace cltoken

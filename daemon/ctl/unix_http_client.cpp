// The only translation unit of cl-tokenctl that includes Beast: it is the slow one to build.
#include "unix_http_client.hpp"

#include <cerrno>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "ctl_error.hpp"
#include "transport_messages.hpp"

namespace cltoken::ctl {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = net::local::stream_protocol;
using Stream = beast::basic_stream<local>;

/// Failure is an expected outcome here (the daemon may be down), so operations complete with
/// an error code instead of throwing, and each failure is turned into its own sentence.
constexpr auto no_throw = net::as_tuple(net::use_awaitable);

[[noreturn]] void fail(const std::string& message) { throw CtlError(ExitCode::unreachable, message); }

bool is_timeout(const beast::error_code& ec) { return ec == beast::error::timeout; }

/// The first folder from / down to the socket's own that any user could write to (a
/// sticky one such as /tmp only as the socket's own folder), as a sentence; nullopt when
/// there is none. There another user could have replaced the socket, or a folder on its
/// way, with their own. (Folders owned by the daemon's user, as /run/cl-tokend under
/// systemd, are fine: only write permission for others is refused.)
std::optional<std::string> open_folder_on_the_way(const std::string& socket_path) {
  std::string folder = socket_path.substr(0, socket_path.rfind('/'));
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(folder.empty() ? "/" : folder.c_str(), nullptr), &std::free);
  if (!real) return std::nullopt; // connect worked: the folder is there; nothing better to say
  const std::string steps = real.get();
  for (std::size_t end = 0; end != std::string::npos;) {
    end = steps.find('/', end + 1);
    const std::string step = end == 1 || steps == "/" ? "/" : steps.substr(0, end);
    struct stat st {};
    if (::lstat(step.c_str(), &st) != 0) return std::nullopt;
    const bool own_folder = end == std::string::npos;
    const bool others_write = (st.st_mode & 022) != 0 && (own_folder || (st.st_mode & S_ISVTX) == 0);
    if (others_write) return untrusted_folder_message(socket_path, step);
    if (steps == "/") break;
  }
  return std::nullopt;
}

http::request<http::string_body> to_beast(const Request& request) {
  http::request<http::string_body> message;
  message.method_string(request.method);
  message.target(request.target);
  message.version(11);
  // The socket has no host name; RFC 9112 still requires a Host header in HTTP/1.1.
  message.set(http::field::host, "localhost");
  message.set(http::field::user_agent, "cl-tokenctl/" CLTOKENCTL_VERSION);
  message.set(http::field::accept, "application/json");
  // One request per process: say so, so the daemon frees the connection right away.
  message.keep_alive(false);
  if (request.body) {
    message.set(http::field::content_type, "application/json");
    message.body() = *request.body;
  }
  message.prepare_payload();
  return message;
}

net::awaitable<Response> exchange(const Request& request, const Endpoint& endpoint) {
  const std::string& path = endpoint.socket_path;
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    fail(connect_failure_message(path, std::error_code(ENAMETOOLONG, std::system_category())));
  }

  Stream stream(co_await net::this_coro::executor);
  // One deadline for the whole exchange. basic_stream keeps the expiry as a time point, so
  // connect, write and read share it instead of each getting the full timeout again.
  stream.expires_after(endpoint.timeout);

  if (auto [ec] = co_await stream.async_connect(local::endpoint(path), no_throw); ec) {
    if (is_timeout(ec)) fail(timeout_message(path, endpoint.timeout));
    fail(connect_failure_message(path, std::error_code(ec.value(), std::system_category())));
  }

  // Who is listening, as the kernel says: a password or token goes only to the daemon.
  // The socket file's owner by default: the daemon creates it (under socket activation
  // systemd does, and the listener is then root's).
  ucred peer{};
  socklen_t size = sizeof peer;
  if (::getsockopt(stream.socket().native_handle(), SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0) {
    fail(io_failure_message(path, std::error_code(errno, std::system_category()).message()));
  }
  unsigned expected = 0;
  if (endpoint.daemon_uid) {
    expected = *endpoint.daemon_uid;
  } else {
    // The file's owner says who the daemon is only when no other user could have put
    // the file there: no folder on the way may be writable by others (sticky folders
    // such as /tmp allowed above its own). In a folder of another user's, or below a
    // sticky one, only --daemon-uid can say who the daemon is.
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) fail(io_failure_message(path, std::error_code(errno, std::system_category()).message()));
    expected = st.st_uid;
    if (auto why = open_folder_on_the_way(path)) throw CtlError(ExitCode::unreachable, *why);
  }
  if (auto why = untrusted_daemon_message(path, peer.uid, expected)) throw CtlError(ExitCode::unreachable, *why);

  auto message = to_beast(request);
  if (auto [ec, written] = co_await http::async_write(stream, message, no_throw); ec) {
    if (is_timeout(ec)) fail(timeout_message(path, endpoint.timeout));
    // EPIPE/ECONNRESET: the daemon closed before reading, e.g. over max_connections.
    fail(io_failure_message(path, ec.message()));
  }

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(endpoint.body_limit);
  if (auto [ec, read] = co_await http::async_read(stream, buffer, parser, no_throw); ec) {
    if (is_timeout(ec)) fail(timeout_message(path, endpoint.timeout));
    if (ec == http::error::end_of_stream || ec == net::error::connection_reset) fail(closed_message(path));
    if (ec == http::error::body_limit) fail(too_large_message(path, endpoint.body_limit));
    if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
      fail(malformed_message(path, ec.message()));
    }
    fail(io_failure_message(path, ec.message()));
  }

  beast::error_code ignored;
  stream.socket().shutdown(local::socket::shutdown_both, ignored);

  auto& answer = parser.get();
  Response response;
  response.status = static_cast<int>(answer.result_int());
  response.body = std::move(answer.body());
  if (auto field = answer.find(http::field::retry_after); field != answer.end()) {
    response.retry_after = std::string(field->value());
  }
  co_return response;
}

} // namespace

Response exchange_over_unix_socket(const Request& request, const Endpoint& endpoint) {
  net::io_context io;
  std::optional<Response> result;
  std::exception_ptr failure;
  net::co_spawn(io, exchange(request, endpoint), [&](std::exception_ptr error, Response response) {
    failure = std::move(error);
    if (!failure) result = std::move(response);
  });
  io.run();
  if (failure) std::rethrow_exception(failure);
  return std::move(*result);
}

} // namespace cltoken::ctl

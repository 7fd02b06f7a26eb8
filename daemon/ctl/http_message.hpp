// The request cl-tokenctl sends and the answer it gets, without any transport: commands are
// written against these and an Exchange, so tests run them with a canned daemon.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>

namespace cltoken::ctl {

struct Request {
  std::string method;              ///< "GET", "POST" or "DELETE".
  std::string target;              ///< Origin-form, already percent-encoded: "/v1/tokens/a?min_ttl=60".
  std::optional<std::string> body; ///< A JSON document; nullopt sends no body.
};

struct Response {
  int status = 0;
  std::string body;
  std::optional<std::string> retry_after; ///< The Retry-After header of a 429/503.
};

/// Where and how long: the socket, the deadline of the whole exchange (connect, write, read),
/// and the most body we accept (a daemon document is a few KiB; the cap only stops a broken
/// peer from filling memory).
struct Endpoint {
  std::string socket_path;
  std::chrono::milliseconds timeout{5000};
  std::size_t body_limit = std::size_t{8} * 1024 * 1024;
  /// The uid the listening process must run as (besides root); nullopt: the socket
  /// file's owner. Checked (SO_PEERCRED) before anything is sent.
  std::optional<unsigned> daemon_uid{};
};

/// Sends one request and returns the answer, whatever its status; throws CtlError
/// (ExitCode::unreachable) when there is no HTTP answer at all.
using Exchange = std::function<Response(const Request&)>;

} // namespace cltoken::ctl

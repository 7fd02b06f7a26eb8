#include "transport_messages.hpp"

#include <cerrno>

namespace cltoken::ctl {

std::string connect_failure_message(std::string_view socket_path, const std::error_code& error) {
  std::string message = "cannot connect to ";
  message += socket_path;
  message += ": ";
  message += error.message();
  if (error.category() == std::system_category() || error.category() == std::generic_category()) {
    switch (error.value()) {
    case ENOENT:
    case ECONNREFUSED: message += " (is cl-tokend running?)"; break;
    case EACCES:
    case EPERM: message += " (is your user in the socket's group?)"; break;
    case EAGAIN: message += " (cl-tokend is not accepting connections fast enough)"; break;
    case ENAMETOOLONG: message += " (a socket path has at most 107 bytes)"; break;
    default: break;
    }
  }
  return message;
}

std::string timeout_message(std::string_view socket_path, std::chrono::milliseconds timeout) {
  return "no answer from cl-tokend on " + std::string(socket_path) + " within " + std::to_string(timeout.count()) +
         " ms (--timeout)";
}

std::string closed_message(std::string_view socket_path) {
  return "cl-tokend on " + std::string(socket_path) + " closed the connection before answering";
}

std::string too_large_message(std::string_view socket_path, std::size_t body_limit) {
  constexpr std::size_t mebibyte = 1024 * 1024;
  const std::string limit =
      body_limit % mebibyte == 0 ? std::to_string(body_limit / mebibyte) + " MiB" : std::to_string(body_limit) + " bytes";
  return "the answer of cl-tokend on " + std::string(socket_path) + " is larger than " + limit;
}

std::string malformed_message(std::string_view socket_path, std::string_view detail) {
  return "malformed HTTP answer from cl-tokend on " + std::string(socket_path) + ": " + std::string(detail);
}

std::string io_failure_message(std::string_view socket_path, std::string_view detail) {
  return "cannot talk to cl-tokend on " + std::string(socket_path) + ": " + std::string(detail);
}

std::string untrusted_folder_message(std::string_view socket_path, std::string_view folder) {
  return "another user could have put the socket " + std::string(socket_path) + " there (" + std::string(folder) +
         " can be written by others); refusing to send it anything (--daemon-uid to say who the "
         "daemon is)";
}

std::optional<std::string> untrusted_daemon_message(std::string_view socket_path, unsigned peer_uid, unsigned expected_uid) {
  if (peer_uid == expected_uid || peer_uid == 0) return std::nullopt;
  return "the process listening on " + std::string(socket_path) + " runs as uid " + std::to_string(peer_uid) + ", not as uid " +
         std::to_string(expected_uid) + " or root; refusing to send it anything (--daemon-uid)";
}

} // namespace cltoken::ctl

// One command line of cl-tokenctl, parsed: what to do, where, and with which arguments.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace cltoken::ctl {

enum class Command {
  status,          ///< GET /v1/status
  token,           ///< GET /v1/tokens/NAME[?min_ttl=S]
  invalidate,      ///< POST /v1/tokens/NAME/invalidate
  revoke,          ///< POST /v1/tokens/NAME/revoke
  refresh,         ///< POST /v1/tokens/NAME/refresh
  reload,          ///< POST /v1/reload
  health,          ///< GET /v1/health
  customer_login,  ///< POST /v1/customers/NAME/sessions
  customer_token,  ///< GET /v1/customers/NAME/sessions/SESSION[?min_ttl=S]
  customer_logout, ///< DELETE /v1/customers/NAME/sessions/SESSION
  verify,          ///< POST /v1/verify
  clients,         ///< GET /v1/clients
};

struct Invocation {
  Command command = Command::status;

  // Global options.
  std::optional<std::string> socket; ///< --socket; see resolve_socket_path().
  bool json = false;                 ///< --json: print the daemon's document.
  std::chrono::milliseconds timeout{5000};
  std::optional<unsigned> daemon_uid; ///< --daemon-uid; nullopt: the socket file's owner.

  // Command arguments; each command reads only its own.
  std::string name; ///< Credential name.
  std::optional<std::int64_t> min_ttl;
  std::string session;  ///< customer token/logout SESSION.
  std::string username; ///< customer login --username.
  bool watch = false;   ///< status --watch.
  bool clients = false; ///< status --clients: the client list after the table.
  std::chrono::milliseconds interval{2000};
};

} // namespace cltoken::ctl

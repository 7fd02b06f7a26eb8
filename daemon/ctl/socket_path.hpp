// Which socket cl-tokenctl talks to.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cltoken::ctl {

/// Where the packaged daemon listens (systemd/cl-tokend.socket, config [server] socket).
inline constexpr std::string_view default_socket_path = "/run/cl-tokend/cl-tokend.sock";

/// The environment variable that names the socket when --socket is not given.
inline constexpr std::string_view socket_env_var = "CL_TOKEND_SOCKET";

/// --socket when given, else $CL_TOKEND_SOCKET when set and non-empty (an empty variable is
/// treated as unset, as shells make it easy to export one by accident), else the default.
/// `env_value` is the variable's value, null when unset.
[[nodiscard]] std::string resolve_socket_path(const std::optional<std::string>& flag, const char* env_value);

} // namespace cltoken::ctl

// The transport: one HTTP/1.1 exchange with cl-tokend over its Unix stream socket.
#pragma once

#include "http_message.hpp"

namespace cltoken::ctl {

/// Connects to endpoint.socket_path, sends `request` (Host: localhost, Connection: close),
/// reads one answer and returns it whatever its status. The whole exchange shares one
/// deadline, endpoint.timeout, so a daemon that accepts and never answers cannot hang a
/// script. Throws CtlError(ExitCode::unreachable) with a sentence from transport_messages.hpp
/// when there is no complete HTTP answer in time.
[[nodiscard]] Response exchange_over_unix_socket(const Request& request, const Endpoint& endpoint);

} // namespace cltoken::ctl

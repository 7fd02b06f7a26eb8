// The sentences cl-tokenctl prints when it gets no usable HTTP answer. Kept apart from the
// Beast code so they are tested without a socket, and so every failure names the socket:
// "which daemon did I talk to" is the first question when several run on one host.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

namespace cltoken::ctl {

/// "cannot connect to PATH: No such file or directory (is cl-tokend running?)"; the hint
/// depends on the error (not running, not allowed, path too long).
[[nodiscard]] std::string connect_failure_message(std::string_view socket_path, const std::error_code& error);

/// "no answer from cl-tokend on PATH within 5000 ms (--timeout)".
[[nodiscard]] std::string timeout_message(std::string_view socket_path, std::chrono::milliseconds timeout);

/// "cl-tokend on PATH closed the connection before answering".
[[nodiscard]] std::string closed_message(std::string_view socket_path);

/// "the answer of cl-tokend on PATH is larger than 8 MiB".
[[nodiscard]] std::string too_large_message(std::string_view socket_path, std::size_t body_limit);

/// "malformed HTTP answer from cl-tokend on PATH: <detail>".
[[nodiscard]] std::string malformed_message(std::string_view socket_path, std::string_view detail);

/// "cannot talk to cl-tokend on PATH: <detail>", for I/O errors after connecting.
[[nodiscard]] std::string io_failure_message(std::string_view socket_path, std::string_view detail);

} // namespace cltoken::ctl

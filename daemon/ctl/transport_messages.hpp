// The sentences cl-tokenctl prints when it gets no usable HTTP answer. Kept apart from the
// Beast code so they are tested without a socket, and so every failure names the socket:
// "which daemon did I talk to" is the first question when several run on one host.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
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

/// nullopt when the process listening on the socket may be talked to: it runs as
/// `expected_uid` or as root. Otherwise "the process listening on PATH runs as uid N, not
/// as uid M or root; refusing to send it anything (--daemon-uid)": another user may have
/// put a listener in the daemon's place, to collect the passwords and tokens sent to it.
/// "another user could have put the socket PATH there (FOLDER can be written by others);
/// refusing to send it anything (--daemon-uid to say who the daemon is)".
[[nodiscard]] std::string untrusted_folder_message(std::string_view socket_path, std::string_view folder);

[[nodiscard]] std::optional<std::string> untrusted_daemon_message(std::string_view socket_path, unsigned peer_uid,
                                                                  unsigned expected_uid);

} // namespace cltoken::ctl

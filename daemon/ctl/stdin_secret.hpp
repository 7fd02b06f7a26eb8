// Secrets that must not be on the command line (visible in ps and shell history): the
// customer password always, the rejected token of `invalidate` when TOKEN is not given.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace cltoken::ctl {

/// Longest secret line accepted: a JWT is a few KiB; the cap keeps `< /dev/zero` from
/// eating memory.
inline constexpr std::size_t max_secret_length = 64 * 1024;

/// The first line of `input` without its line ending (LF or CRLF), so `echo "$PW" |` and
/// `printf %s "$PW" |` give the same password; nullopt when the input is empty. Throws
/// CtlError(usage) when the line is longer than max_secret_length.
[[nodiscard]] std::optional<std::string> read_secret_line(std::istream& input);

/// `text` without leading and trailing white space (tokens never contain any).
[[nodiscard]] std::string trim(std::string_view text);

/// read_secret_line on stdin; when stdin is a terminal, first writes `prompt` on stderr and
/// turns echo off while the line is typed.
[[nodiscard]] std::optional<std::string> read_secret_from_stdin(std::string_view prompt);

} // namespace cltoken::ctl

#pragma once
// Whole-file reads and crash-safe replacement for the state file: a reader (or the daemon
// after a power cut) sees either the old content or the new one, never a torn write.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cltoken {

/// Replaces `path` with `content`: a temporary file in the same folder (mode 0600), fsync,
/// rename over `path`, fsync of the folder so the rename itself is durable. Throws
/// std::system_error naming the step and the path; the temporary file is removed then.
/// `durable` false skips both fsyncs: for a file that must survive the process, not a
/// power cut, and is written often.
void replace_file_atomically(const std::string& path, std::string_view content, bool durable = true);

/// The file's content; nullopt when it does not exist. Throws std::system_error when it
/// exists but cannot be read, is not a regular file, or is larger than `max_size`.
std::optional<std::string> read_whole_file(const std::string& path, std::size_t max_size);

/// The permission bits of an existing file (0 if it cannot be stat'ed).
unsigned file_mode(const std::string& path);

} // namespace cltoken

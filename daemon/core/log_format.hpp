#pragma once
// How one log line looks, as spdlog formatters, apart from where it goes (core/log.hpp),
// so tests can format a message with a fixed time and read the bytes back.
//
//   text:            2026-11-25T21:03:04.123Z warning  credential backoffice: refresh failed ...
//   json:            {"ts":"2026-11-25T21:03:04.123Z","level":"warning","credential":"backoffice","msg":"credential backoffice: ..."}
//   either, journal: "<4>" before the line (syslog priority, read and stripped by journald,
//                    so `journalctl -p warning` works); text then drops its own time stamp.
//
// Lines about one credential start "credential NAME: " (the broker's wording); the JSON
// format lifts NAME into a "credential" field so a log pipeline can filter on it.
#include <memory>
#include <optional>
#include <string_view>

#include <spdlog/formatter.h>

namespace cltoken {

enum class LogFormat { text, json };

/// The formatter of every line. `journal`: stderr is connected to the journal.
[[nodiscard]] std::unique_ptr<spdlog::formatter> make_log_formatter(LogFormat format, bool journal);

/// The syslog priority prefix for a level: "<7>" debug and trace, "<6>" info, "<4>" warning,
/// "<3>" error, "<2>" critical.
[[nodiscard]] std::string_view journal_priority(spdlog::level::level_enum level);

/// NAME from a message that starts "credential NAME: ", else nullopt.
[[nodiscard]] std::optional<std::string_view> credential_of(std::string_view message);

/// True when $JOURNAL_STREAM ("DEVICE:INODE", set by systemd for a service whose stderr is
/// the journal) names the file that stderr is (`device`, `inode` from fstat). systemd says
/// to compare, not just test for the variable: a child or a redirected stderr inherits it.
[[nodiscard]] bool journal_stream_matches(const char* journal_stream, unsigned long long device, unsigned long long inode);

} // namespace cltoken

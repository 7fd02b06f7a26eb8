#pragma once
// Logging set-up: spdlog to stderr in text or JSON lines (core/log_format.hpp). Under
// systemd, when stderr is the journal, each line starts with a syslog priority prefix
// ("<4>") so `journalctl -p warning` works.
#include <string>

namespace cltoken {

/// Installs the default logger. `format` is "text" or "json"; `level` a spdlog level name.
void setup_logging(const std::string& level, const std::string& format);

/// Changes the level at run time (reload, --log-level).
void set_log_level(const std::string& level);

/// Changes the line format at run time (reload): "text" or "json".
void set_log_format(const std::string& format);

/// True when stderr is the journal stream systemd connected ($JOURNAL_STREAM matches it).
[[nodiscard]] bool stderr_is_journal();

} // namespace cltoken

#pragma once
// Logging set-up: spdlog to stderr in text or JSON lines. Under systemd (JOURNAL_STREAM)
// each line starts with a syslog priority prefix ("<4>") so `journalctl -p` works.
#include <string>

namespace cltoken {

/// Installs the default logger. `format` is "text" or "json"; `level` a spdlog level name.
void setup_logging(const std::string& level, const std::string& format);

/// Changes the level at run time (reload, --log-level).
void set_log_level(const std::string& level);

} // namespace cltoken

#include "core/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "core/log_format.hpp"

namespace cltoken {

void set_log_level(const std::string& level) { spdlog::set_level(spdlog::level::from_str(level)); }

bool stderr_is_journal() {
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return journal_stream_matches(std::getenv("JOURNAL_STREAM"), static_cast<unsigned long long>(st.st_dev),
                                static_cast<unsigned long long>(st.st_ino));
}

void set_log_format(const std::string& format) {
  spdlog::default_logger()->set_formatter(
      make_log_formatter(format == "json" ? LogFormat::json : LogFormat::text, stderr_is_journal()));
}

void setup_logging(const std::string& level, const std::string& format) {
  spdlog::set_default_logger(spdlog::stderr_logger_mt("cl-tokend"));
  set_log_format(format);
  // Every line reaches the journal or the file at once: a crash loses nothing, and the
  // volume (a few lines per refresh) makes the cost irrelevant.
  spdlog::flush_on(spdlog::level::trace);
  set_log_level(level);
}

} // namespace cltoken

#include "core/log.hpp"

#include <cstdlib>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace cltoken {

namespace {

/// %Q: the syslog priority prefix that journald reads from a stream ("<3>" for error).
class JournalPriority final : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr const char* prefixes[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
    std::string_view p = prefixes[static_cast<int>(msg.level)];
    dest.append(p.data(), p.data() + p.size());
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JournalPriority>(); }
};

/// %J: the message as a JSON string body (escaped, without quotes).
class JsonEscaped final : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    for (char c : msg.payload) {
      switch (c) {
      case '"': dest.append(std::string_view("\\\"")); break;
      case '\\': dest.append(std::string_view("\\\\")); break;
      case '\n': dest.append(std::string_view("\\n")); break;
      case '\r': dest.append(std::string_view("\\r")); break;
      case '\t': dest.append(std::string_view("\\t")); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
          dest.append(std::string_view(buf));
        } else {
          dest.push_back(c);
        }
      }
    }
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonEscaped>(); }
};

} // namespace

void set_log_level(const std::string& level) { spdlog::set_level(spdlog::level::from_str(level)); }

void setup_logging(const std::string& level, const std::string& format) {
  const bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  auto logger = spdlog::stderr_logger_mt("cl-tokend");
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc, spdlog::details::os::default_eol);
  formatter->add_flag<JournalPriority>('Q');
  formatter->add_flag<JsonEscaped>('J');
  std::string prefix = journal ? "%Q" : "";
  if (format == "json") {
    formatter->set_pattern(prefix + R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":"%J"})");
  } else if (journal) {
    formatter->set_pattern(prefix + "%v"); // the journal adds its own time stamp
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v");
  }
  logger->set_formatter(std::move(formatter));
  spdlog::set_default_logger(logger);
  spdlog::flush_on(spdlog::level::trace);
  set_log_level(level);
}

} // namespace cltoken

#include "core/log_format.hpp"

#include <charconv>
#include <chrono>
#include <ctime>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/details/log_msg.h>
#include <spdlog/pattern_formatter.h>

namespace cltoken {

std::string_view journal_priority(spdlog::level::level_enum level) {
  switch (level) {
  case spdlog::level::trace:
  case spdlog::level::debug: return "<7>";
  case spdlog::level::info: return "<6>";
  case spdlog::level::warn: return "<4>";
  case spdlog::level::err: return "<3>";
  case spdlog::level::critical: return "<2>";
  default: return "<6>";
  }
}

std::optional<std::string_view> credential_of(std::string_view message) {
  constexpr std::string_view prefix = "credential ";
  if (message.substr(0, prefix.size()) != prefix) return std::nullopt;
  message.remove_prefix(prefix.size());
  const auto colon = message.find(": ");
  if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
  const auto name = message.substr(0, colon);
  if (name.find(' ') != std::string_view::npos) return std::nullopt; // prose, not a name
  return name;
}

bool journal_stream_matches(const char* journal_stream, unsigned long long device, unsigned long long inode) {
  if (journal_stream == nullptr) return false;
  const std::string_view text(journal_stream);
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  auto parse = [](std::string_view digits, unsigned long long& out) {
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    return ec == std::errc{} && end == digits.data() + digits.size() && !digits.empty();
  };
  unsigned long long dev = 0;
  unsigned long long ino = 0;
  return parse(text.substr(0, colon), dev) && parse(text.substr(colon + 1), ino) && dev == device && ino == inode;
}

namespace {

/// "2026-11-25T21:03:04.123Z" from the time spdlog stamped on the message.
std::string utc_millis(spdlog::log_clock::time_point t) {
  const auto ms = std::chrono::time_point_cast<std::chrono::milliseconds>(t);
  const std::time_t secs = spdlog::log_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", tm, ms.time_since_epoch().count() % 1000);
}

/// One JSON object per line. nlohmann writes the escaping; invalid UTF-8 in a message
/// (an upstream body cut mid-character) becomes U+FFFD instead of an invalid line.
class JsonFormatter final : public spdlog::formatter {
public:
  explicit JsonFormatter(bool journal) : journal_(journal) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    const auto level = spdlog::level::to_string_view(msg.level);
    nlohmann::ordered_json line{{"ts", utc_millis(msg.time)}, {"level", std::string_view(level.data(), level.size())}};
    if (auto credential = credential_of(text)) line["credential"] = *credential;
    line["msg"] = text;
    const std::string body = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (journal_) append(dest, journal_priority(msg.level));
    append(dest, body);
    append(dest, spdlog::details::os::default_eol);
  }

  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(journal_); }

private:
  static void append(spdlog::memory_buf_t& dest, std::string_view s) { dest.append(s.data(), s.data() + s.size()); }
  bool journal_;
};

/// %Q in a pattern: the journal priority prefix.
class JournalPriorityFlag final : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const auto p = journal_priority(msg.level);
    dest.append(p.data(), p.data() + p.size());
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JournalPriorityFlag>(); }
};

} // namespace

std::unique_ptr<spdlog::formatter> make_log_formatter(LogFormat format, bool journal) {
  if (format == LogFormat::json) return std::make_unique<JsonFormatter>(journal);
  auto text = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc, spdlog::details::os::default_eol);
  text->add_flag<JournalPriorityFlag>('Q');
  // The journal stamps each line itself and shows the priority, so neither is repeated.
  // Levels are padded to "critical" so that messages start in one column.
  text->set_pattern(journal ? "%Q%v" : "%Y-%m-%dT%H:%M:%S.%eZ %-8l %v");
  return text;
}

} // namespace cltoken

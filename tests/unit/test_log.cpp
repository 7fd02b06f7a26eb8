// Log line formats with a fixed time: text, JSON (parsed back), and the journal's priority
// prefix. The live daemon's lines are checked by tests/integration/test_observability_logs.py.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/details/log_msg.h>

#include "core/log_format.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

namespace {

/// 2026-11-25T21:03:04.123Z
const spdlog::log_clock::time_point fixed_time = spdlog::log_clock::time_point{} + 1795640584s + 123ms;

std::string format(LogFormat f, bool journal, spdlog::level::level_enum level, std::string_view text) {
  spdlog::details::log_msg msg(spdlog::source_loc{}, "cl-tokend", level, spdlog::string_view_t(text.data(), text.size()));
  msg.time = fixed_time;
  spdlog::memory_buf_t buf;
  make_log_formatter(f, journal)->format(msg, buf);
  return {buf.data(), buf.size()};
}

} // namespace

TEST_CASE("log: text lines carry a UTC time stamp, a padded level and the message") {
  CHECK(format(LogFormat::text, false, spdlog::level::warn, "credential backoffice: refresh failed in 12 ms") ==
        "2026-11-25T21:03:04.123Z warning  credential backoffice: refresh failed in 12 ms\n");
  CHECK(format(LogFormat::text, false, spdlog::level::info, "listening") == "2026-11-25T21:03:04.123Z info     listening\n");
}

TEST_CASE("log: on the journal, text lines start with the syslog priority and drop the time stamp") {
  CHECK(format(LogFormat::text, true, spdlog::level::warn, "x") == "<4>x\n");
  CHECK(format(LogFormat::text, true, spdlog::level::err, "x") == "<3>x\n");
  CHECK(format(LogFormat::text, true, spdlog::level::critical, "x") == "<2>x\n");
  CHECK(format(LogFormat::text, true, spdlog::level::info, "x") == "<6>x\n");
  CHECK(format(LogFormat::text, true, spdlog::level::debug, "x") == "<7>x\n");
  CHECK(format(LogFormat::text, true, spdlog::level::trace, "x") == "<7>x\n");
}

TEST_CASE("log: JSON lines are one object with ts, level, credential and msg") {
  const std::string line =
      format(LogFormat::json, false, spdlog::level::info, "credential storefront-eu: refresh ok in 70 ms, expires in 14400 s");
  REQUIRE(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
  const auto j = nlohmann::json::parse(line);
  CHECK(j["ts"] == "2026-11-25T21:03:04.123Z");
  CHECK(j["level"] == "info");
  CHECK(j["credential"] == "storefront-eu");
  CHECK(j["msg"] == "credential storefront-eu: refresh ok in 70 ms, expires in 14400 s");
  // Lines about no credential have no credential field.
  CHECK_FALSE(nlohmann::json::parse(format(LogFormat::json, false, spdlog::level::info, "stopped")).contains("credential"));
}

TEST_CASE("log: JSON survives quotes, control characters and invalid UTF-8 in a message") {
  const std::string nasty = std::string("upstream said \"no\"\\\n\t\x01 and \xC3") + "\xFF done";
  const std::string line = format(LogFormat::json, false, spdlog::level::err, nasty);
  CHECK(line.find('\n') == line.size() - 1); // still one line
  const auto j = nlohmann::json::parse(line);
  const std::string msg = j["msg"];
  CHECK(msg.rfind("upstream said \"no\"\\\n\t\x01 and ", 0) == 0);
  CHECK_THAT(msg, Catch::Contains("\xEF\xBF\xBD")); // U+FFFD in place of the bad bytes
  CHECK(j["level"] == "error");
}

TEST_CASE("log: JSON on the journal gets the priority prefix before the object") {
  const std::string line = format(LogFormat::json, true, spdlog::level::warn, "credential a: x");
  REQUIRE(line.rfind("<4>{", 0) == 0);
  CHECK(nlohmann::json::parse(line.substr(3))["level"] == "warning");
}

TEST_CASE("log: the credential is lifted only from the 'credential NAME: ' prefix") {
  CHECK(credential_of("credential backoffice: refresh ok") == std::optional<std::string_view>("backoffice"));
  CHECK(credential_of("credential a.b-c_1: x") == std::optional<std::string_view>("a.b-c_1"));
  CHECK_FALSE(credential_of("credentials reloaded: 2").has_value());
  CHECK_FALSE(credential_of("credential : x").has_value());
  CHECK_FALSE(credential_of("credential with spaces in it: x").has_value());
  CHECK_FALSE(credential_of("access denied: credential backoffice").has_value());
  CHECK_FALSE(credential_of("credential backoffice").has_value());
}

TEST_CASE("log: JOURNAL_STREAM counts only when it names stderr") {
  CHECK(journal_stream_matches("8:12345", 8, 12345));
  CHECK_FALSE(journal_stream_matches(nullptr, 8, 12345));
  CHECK_FALSE(journal_stream_matches("8:12346", 8, 12345)); // inherited, stderr redirected
  CHECK_FALSE(journal_stream_matches("9:12345", 8, 12345));
  CHECK_FALSE(journal_stream_matches("8:", 8, 0));
  CHECK_FALSE(journal_stream_matches(":12345", 0, 12345));
  CHECK_FALSE(journal_stream_matches("8:12345x", 8, 12345));
  CHECK_FALSE(journal_stream_matches("garbage", 8, 12345));
}

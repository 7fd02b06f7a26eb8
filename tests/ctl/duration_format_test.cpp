#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>

#include "duration_format.hpp"

using cltoken::ctl::format_duration;
using cltoken::ctl::format_time_left;

TEST_CASE("durations use the two most significant units, the second zero-padded", "[duration]") {
  CHECK(format_duration(0) == "0s");
  CHECK(format_duration(12) == "12s");
  CHECK(format_duration(59) == "59s");
  CHECK(format_duration(60) == "1m 00s");
  CHECK(format_duration(245) == "4m 05s");
  CHECK(format_duration(3599) == "59m 59s");
  CHECK(format_duration(3600) == "1h 00m");
  CHECK(format_duration(6720) == "1h 52m");
  CHECK(format_duration(7199) == "1h 59m");
  CHECK(format_duration(86399) == "23h 59m");
  CHECK(format_duration(86400) == "1d 00h");
  CHECK(format_duration(273600) == "3d 04h");
  CHECK(format_duration(1209600) == "14d 00h");
}

TEST_CASE("negative durations keep their sign", "[duration]") {
  CHECK(format_duration(-5) == "-5s");
  CHECK(format_duration(-245) == "-4m 05s");
  CHECK(format_duration(std::numeric_limits<std::int64_t>::min()).front() == '-');
}

TEST_CASE("time left: em dash when unknown, a word when past, whole seconds otherwise", "[duration]") {
  CHECK(format_time_left(std::nullopt, "expired") == "\xE2\x80\x94");
  CHECK(format_time_left(-1.0, "expired") == "expired");
  CHECK(format_time_left(-0.5, "overdue") == "overdue");
  CHECK(format_time_left(0.0, "expired") == "0s");
  // 59.9 s is not a minute: rounded down.
  CHECK(format_time_left(59.9, "expired") == "59s");
  CHECK(format_time_left(5423.0, "expired") == "1h 30m");
  CHECK(format_time_left(std::numeric_limits<double>::quiet_NaN(), "expired") == "\xE2\x80\x94");
  CHECK_FALSE(format_time_left(1e300, "expired").empty());
}

#include "duration_format.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace cltoken::ctl {
namespace {

std::string two_units(std::int64_t major, char major_unit, std::int64_t minor, char minor_unit) {
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%lld%c %02lld%c", static_cast<long long>(major), major_unit,
                static_cast<long long>(minor), minor_unit);
  return buffer;
}

} // namespace

std::string format_duration(std::int64_t seconds) {
  if (seconds < 0) {
    // -INT64_MIN overflows; nobody waits 292 billion years, so clamp.
    const std::int64_t magnitude =
        seconds == std::numeric_limits<std::int64_t>::min() ? std::numeric_limits<std::int64_t>::max() : -seconds;
    return "-" + format_duration(magnitude);
  }
  constexpr std::int64_t minute = 60;
  constexpr std::int64_t hour = 60 * minute;
  constexpr std::int64_t day = 24 * hour;
  if (seconds < minute) return std::to_string(seconds) + "s";
  if (seconds < hour) return two_units(seconds / minute, 'm', seconds % minute, 's');
  if (seconds < day) return two_units(seconds / hour, 'h', seconds % hour / minute, 'm');
  return two_units(seconds / day, 'd', seconds % day / hour, 'h');
}

std::string format_time_left(std::optional<double> seconds, std::string_view when_past) {
  if (!seconds || std::isnan(*seconds)) return std::string(unknown_value);
  if (*seconds < 0) return std::string(when_past);
  // Whole seconds left, rounded down: a token with 59.9 s left does not have a minute.
  constexpr double largest = static_cast<double>(std::numeric_limits<std::int64_t>::max() / 2);
  return format_duration(static_cast<std::int64_t>(std::floor(std::min(*seconds, largest))));
}

} // namespace cltoken::ctl

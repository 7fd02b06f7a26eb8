// Durations for people: "1h 52m", "4m 05s", "12s". The daemon sends seconds, so nothing here
// needs a clock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cltoken::ctl {

/// Placeholder for a value the daemon does not know (JSON null): an em dash.
inline constexpr std::string_view unknown_value = "\xE2\x80\x94";

/// Two most significant units, the second zero-padded so columns line up:
/// 0 -> "0s", 12 -> "12s", 245 -> "4m 05s", 6720 -> "1h 52m", 273600 -> "3d 04h".
/// Negative durations get a leading "-" (callers usually say "expired" instead).
[[nodiscard]] std::string format_duration(std::int64_t seconds);

/// A time left, as the status table shows it: unknown_value for nullopt (no token, no
/// refresh scheduled), `when_past` ("expired", "overdue") when negative, else
/// format_duration of the whole seconds.
[[nodiscard]] std::string format_time_left(std::optional<double> seconds, std::string_view when_past);

} // namespace cltoken::ctl

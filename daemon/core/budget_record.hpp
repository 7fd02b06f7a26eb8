#pragma once
// The upstream budget's memory across a restart (upstream.budget_path): the requests that
// still hold a slot and the end of a 429 pause. Without it a daemon that restarts, or
// crashes and restarts in a loop, starts each life with a full budget and sends its cold
// start again within the minute the auth server is still counting the last one.
//
// Wall time in the file: the monotonic clock means nothing after a reboot, and a record
// the wall clock made wrong (a jump) errs on the side of holding a slot, never of
// sending more: RateBudget::restore() clamps what it reads. Text, no I/O here.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"

namespace cltoken {

struct BudgetRecord {
  std::vector<WallTime> answered;       ///< requests answered within the last window
  std::vector<WallTime> in_flight;      ///< requests sent and not yet answered, by send time
  std::optional<WallTime> paused_until; ///< a 429 pause still running
};

/// The file's content: a header line, then one line per entry ("answered MS", "in_flight
/// MS", "paused_until MS", Unix milliseconds).
[[nodiscard]] std::string render_budget_record(const BudgetRecord& r);

struct BudgetRecordParse {
  std::optional<BudgetRecord> record;
  std::string error; ///< why the text is not a record (then record is empty)
};
/// At most `max_entries` entries: a longer file is refused, not cut.
[[nodiscard]] BudgetRecordParse parse_budget_record(std::string_view text, std::size_t max_entries = 200000);

} // namespace cltoken

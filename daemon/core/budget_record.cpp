#include "core/budget_record.hpp"

#include <charconv>
#include <cstdint>

namespace cltoken {

namespace {

constexpr std::string_view header = "cl-tokend upstream budget 1";

std::int64_t unix_ms(WallTime t) { return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count(); }

} // namespace

std::string render_budget_record(const BudgetRecord& r) {
  std::string out(header);
  out += '\n';
  auto line = [&out](std::string_view what, WallTime t) {
    out += what;
    out += ' ';
    out += std::to_string(unix_ms(t));
    out += '\n';
  };
  for (auto t : r.answered) line("answered", t);
  for (auto t : r.in_flight) line("in_flight", t);
  if (r.paused_until) line("paused_until", *r.paused_until);
  return out;
}

BudgetRecordParse parse_budget_record(std::string_view text, std::size_t max_entries) {
  auto fail = [](std::string why) { return BudgetRecordParse{std::nullopt, std::move(why)}; };
  std::size_t pos = text.find('\n');
  if (pos == std::string_view::npos || text.substr(0, pos) != header) return fail("not an upstream budget record");
  BudgetRecord r;
  std::size_t line_no = 1;
  for (++pos; pos < text.size();) {
    ++line_no;
    const std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) return fail("line " + std::to_string(line_no) + " is cut short");
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    const std::size_t space = line.find(' ');
    const std::string_view what = line.substr(0, space);
    std::int64_t ms = -1;
    if (space != std::string_view::npos) {
      const char* first = line.data() + space + 1;
      const char* last = line.data() + line.size();
      auto [p, ec] = std::from_chars(first, last, ms);
      if (ec != std::errc() || p != last || first == last) ms = -1;
    }
    // Unix milliseconds from 2001 to 2286: anything else is not a time this daemon wrote.
    if (ms < 1'000'000'000'000 || ms > 9'999'999'999'999)
      return fail("line " + std::to_string(line_no) + " is not \"WHAT MILLISECONDS\"");
    const WallTime t{std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds(ms))};
    if (what == "answered") r.answered.push_back(t);
    else if (what == "in_flight") r.in_flight.push_back(t);
    else if (what == "paused_until" && !r.paused_until) r.paused_until = t;
    else return fail("line " + std::to_string(line_no) + " is not an entry of the record");
    if (r.answered.size() + r.in_flight.size() > max_entries)
      return fail("more than " + std::to_string(max_entries) + " entries");
  }
  return {std::move(r), {}};
}

} // namespace cltoken

#include "status_table.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "ansi.hpp"
#include "credential_state.hpp"
#include "ctl_error.hpp"
#include "duration_format.hpp"
#include "terminal_text.hpp"

namespace cltoken::ctl {
namespace {

using json = Document;

enum Column : std::size_t { name, kind, state, expires, next_refresh, upstream, last_error, column_count };

constexpr std::array<std::string_view, column_count> headings = {"NAME",    "KIND",     "STATE",     "EXPIRES",
                                                                 "REFRESH", "UPSTREAM", "LAST ERROR"};
constexpr std::string_view gap = "  ";

const json* member(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  const auto found = object.find(key);
  return found == object.end() ? nullptr : &*found;
}

/// A field shown as text: strings cleaned for the terminal, numbers as JSON writes them,
/// null or missing as "—". Other types should not occur; "?" shows that without failing
/// the whole table, since a status view is most needed when something is already odd.
std::string text_of(const json& object, const char* key) {
  const json* value = member(object, key);
  if (value == nullptr || value->is_null()) return std::string(unknown_value);
  if (value->is_string()) {
    std::string text = one_line(value->get_ref<const std::string&>());
    return text.empty() ? std::string(unknown_value) : text;
  }
  if (value->is_number()) return value->dump();
  return "?";
}

std::optional<double> number_of(const json& object, const char* key) {
  const json* value = member(object, key);
  if (value == nullptr || !value->is_number()) return std::nullopt;
  return value->get<double>();
}

std::string count_text(double value) { return std::to_string(static_cast<long long>(std::floor(value))); }

/// "12", "12 (3 failed)", or "—".
std::string upstream_of(const json& credential) {
  const auto requests = number_of(credential, "upstream_requests");
  if (!requests) return std::string(unknown_value);
  std::string text = count_text(*requests);
  const auto failures = number_of(credential, "upstream_failures");
  if (failures && *failures > 0) text += " (" + count_text(*failures) + " failed)";
  return text;
}

/// "2026-11-25T12:03:04Z" -> "12:03:04Z": a rate-limit pause lasts seconds to minutes, so the
/// time of day is what the reader needs. Anything else is shown as sent.
std::string time_of_day(const std::string& timestamp) {
  const bool iso_utc =
      timestamp.size() >= 20 && timestamp[10] == 'T' && timestamp[13] == ':' && timestamp[16] == ':' && timestamp.back() == 'Z';
  if (iso_utc) return timestamp.substr(11, 8) + "Z";
  return one_line(timestamp);
}

std::string header_of(const json& status, bool colour) {
  std::string header = "cl-tokend";
  if (const std::string version = text_of(status, "version"); version != unknown_value) header += " " + version;
  if (const auto uptime = number_of(status, "uptime_s")) header += ", up " + format_time_left(uptime, "?");

  // Optional in the schema: present only when customer sessions are in use.
  if (const json* customers = member(status, "customers"); customers != nullptr) {
    if (const auto sessions = number_of(*customers, "sessions")) {
      header += ", " + count_text(*sessions) + (*sessions == 1 ? " customer session" : " customer sessions");
    }
  }

  const json* upstream = member(status, "upstream");
  if (upstream == nullptr) return header;
  const auto used = number_of(*upstream, "requests_last_minute");
  const auto budget = number_of(*upstream, "budget_per_minute");
  if (used) {
    std::string load = count_text(*used);
    if (budget) load += "/" + count_text(*budget);
    load += " req/min";
    const bool exhausted = budget && *used >= *budget;
    header += ", upstream " + (colour && exhausted ? paint(load, Colour::yellow) : load);
  }
  if (const json* until = member(*upstream, "rate_limited_until");
      until != nullptr && until->is_string() && !until->get_ref<const std::string&>().empty()) {
    const std::string pause = "rate limited until " + time_of_day(until->get_ref<const std::string&>());
    header += ", " + (colour ? paint(pause, Colour::red) : pause);
  }
  return header;
}

/// The daemon sends 0 when an upstream attempt is due or under way: "now" says that, where
/// "0s" read like a countdown that had run out.
std::string next_refresh_of(const json& credential) {
  const auto seconds = number_of(credential, "next_refresh_in");
  if (seconds && *seconds >= 0 && *seconds < 1) return "now";
  return format_time_left(seconds, "overdue");
}

using Row = std::array<std::string, column_count>;

Row row_of(const json& credential) {
  Row row;
  row[name] = text_of(credential, "name");
  row[kind] = text_of(credential, "kind");
  row[state] = text_of(credential, "state");
  row[expires] = format_time_left(number_of(credential, "expires_in"), "expired");
  row[next_refresh] = next_refresh_of(credential);
  row[upstream] = upstream_of(credential);
  row[last_error] = text_of(credential, "last_error");
  return row;
}

std::string line_of(const Row& cells, const std::array<std::size_t, column_count>& widths, Colour state_paint) {
  std::string line;
  for (std::size_t column = 0; column < column_count; ++column) {
    const bool last = column + 1 == column_count;
    const std::string& cell = cells[column];
    if (column == state && state_paint != Colour::none) {
      // Pad outside the escape codes, which take no columns.
      line += paint(cell, state_paint);
      if (!last) line.append(widths[column] - display_width(cell), ' ');
    } else {
      line += last ? cell : pad_right(cell, widths[column]);
    }
    if (!last) line += gap;
  }
  return line;
}

} // namespace

std::string render_status_table(const json& status, const TableOptions& options) {
  const json* credentials = member(status, "credentials");
  if (credentials == nullptr || !credentials->is_array()) {
    throw CtlError(ExitCode::unreachable, "the status document from cl-tokend has no credentials list");
  }

  std::string out = header_of(status, options.colour) + "\n\n";
  if (credentials->empty()) return out + "no credentials configured\n";

  std::vector<Row> rows;
  rows.reserve(credentials->size());
  std::array<std::size_t, column_count> widths{};
  for (std::size_t column = 0; column < column_count; ++column) widths[column] = display_width(headings[column]);
  for (const auto& credential : *credentials) {
    rows.push_back(row_of(credential));
    for (std::size_t column = 0; column < last_error; ++column) {
      widths[column] = std::max(widths[column], display_width(rows.back()[column]));
    }
  }

  // LAST ERROR is the only column cut: names and numbers are short and must stay exact,
  // while an upstream error can be a paragraph. A cut error is printed whole under the
  // table, since its end ("... (401 invalid_client)") is often what says what to fix.
  std::size_t error_width = default_error_width;
  if (options.terminal_columns) {
    std::size_t used = 0;
    for (std::size_t column = 0; column < last_error; ++column) used += widths[column] + gap.size();
    // One column spare: some terminals wrap a line that fills the last column exactly.
    const std::size_t usable = *options.terminal_columns > 0 ? *options.terminal_columns - 1 : 0;
    error_width = usable > used + min_error_width ? usable - used : min_error_width;
  }

  Row heading_row;
  std::copy(headings.begin(), headings.end(), heading_row.begin());
  out += line_of(heading_row, widths, Colour::none) + "\n";
  std::string whole_errors;
  for (auto& row : rows) {
    std::string cut = truncate_to_width(row[last_error], error_width);
    if (cut != row[last_error]) whole_errors += row[name] + ": " + row[last_error] + "\n";
    row[last_error] = std::move(cut);
    const Colour colour = options.colour ? state_colour(row[state]) : Colour::none;
    out += line_of(row, widths, colour) + "\n";
  }
  if (!whole_errors.empty()) out += "\n" + whole_errors;
  return out;
}

} // namespace cltoken::ctl

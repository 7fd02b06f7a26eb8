// The human view of the /v1/status document: a header line and one row per credential.
// A pure function of the document, so its output is tested byte for byte.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "document.hpp"

namespace cltoken::ctl {

struct TableOptions {
  /// ANSI colour for states and warnings; see colour_wanted().
  bool colour = false;
  /// Width of the terminal; LAST ERROR gets the columns left over (at least
  /// min_error_width). Unknown (not a terminal): LAST ERROR is cut at default_error_width.
  /// Errors that were cut follow the table whole, one "NAME: error" line each.
  std::optional<std::size_t> terminal_columns;
};

inline constexpr std::size_t default_error_width = 60;
/// Small, since a cut error follows the table whole: a short stub that keeps the row on one
/// line reads better than a row the terminal wraps.
inline constexpr std::size_t min_error_width = 12;

/// For example:
///   cl-tokend 0.1.0, up 2h 05m, upstream 3/25 req/min
///
///   NAME        KIND         STATE  EXPIRES  REFRESH  UPSTREAM  LAST ERROR
///   backoffice  integration  fresh  1h 52m   1h 22m   12        —
/// EXPIRES is the time the token has left, REFRESH the time to the next upstream attempt;
/// the headings are short so that LAST ERROR keeps room on an 80-100 column terminal.
/// Unknown values (JSON null) show as "—", a negative expires_in as "expired", a
/// next_refresh_in of 0 (attempt due or under way) as "now" and a negative one as
/// "overdue"; daemon strings are cleaned with one_line(). Throws
/// CtlError(unreachable) when the document has no credentials array.
[[nodiscard]] std::string render_status_table(const Document& status, const TableOptions& options);

} // namespace cltoken::ctl

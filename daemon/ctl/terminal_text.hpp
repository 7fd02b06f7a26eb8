// Text that is safe and measurable on a terminal: daemon-supplied strings (credential names,
// upstream error details) are printed in a table, so they are cleaned of control characters
// (an ESC in an upstream error must not drive the user's terminal) and measured in columns,
// not bytes, so UTF-8 (the "—" placeholder, names) keeps the table aligned.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cltoken::ctl {

/// The text as one line: tabs, newlines and runs of white space become one space, other
/// control characters (C0, DEL, C1) and invalid UTF-8 become U+FFFD, leading and trailing
/// white space goes.
[[nodiscard]] std::string one_line(std::string_view text);

/// Columns the text takes: one per code point. East Asian wide characters are counted as
/// one; credential names and error details are ASCII in practice, and this is only used to
/// align a table.
[[nodiscard]] std::size_t display_width(std::string_view utf8);

/// At most `width` columns of `text`: cut with "…", at a word boundary when one is near, so
/// a long upstream error stays readable. Precondition: `text` is valid UTF-8 (from one_line).
[[nodiscard]] std::string truncate_to_width(std::string_view text, std::size_t width);

/// `text` followed by spaces up to `width` columns.
[[nodiscard]] std::string pad_right(std::string_view text, std::size_t width);

} // namespace cltoken::ctl

// The one line cl-tokenctl writes on stderr when something goes wrong.
#pragma once

#include <string>
#include <string_view>

namespace cltoken::ctl {

/// "cl-tokenctl: <what>\n", with `what` forced onto one line (see one_line()) so scripts and
/// journald see exactly one line per failure, whatever the daemon's message holds.
[[nodiscard]] std::string error_line(std::string_view what);

} // namespace cltoken::ctl

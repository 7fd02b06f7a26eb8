#pragma once
// The one-line summary that `systemctl status cl-tokend` shows (sd_notify STATUS=): how
// many credentials hold a usable token, and which ones need attention and why.
#include <string>

#include "core/documents.hpp"

namespace cltoken::systemd {

/// "3/3 credentials fresh", or "1 failing: backoffice rejected; 2 fresh": problems first,
/// naming the credentials that have no usable token. `note` (for example why the last
/// reload was refused) is appended when not empty.
[[nodiscard]] std::string status_line(const StatusView& status, SteadyTime now, const std::string& note = {});

} // namespace cltoken::systemd

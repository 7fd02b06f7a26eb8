// What the credential states of the status document mean to cl-tokenctl.
#pragma once

#include <string_view>

#include "ansi.hpp"
#include "document.hpp"
#include "exit_code.hpp"

namespace cltoken::ctl {

/// Whether a credential in this state has a token the daemon will hand out: fresh,
/// refreshing (the current token stays valid while the new one is fetched) and stale (valid,
/// refresh overdue). empty, fetching (first fetch, nothing to serve yet), expired and failing
/// are not; nor is a state this build does not know, so a script notices rather than trusts it.
[[nodiscard]] bool is_serving(std::string_view state) noexcept;

/// fresh green, refreshing/fetching cyan (work in progress), stale yellow (still serving,
/// look soon), expired/failing red, empty dim (nothing asked for it yet); others uncoloured.
[[nodiscard]] Colour state_colour(std::string_view state) noexcept;

/// The exit code of `status`: ok when every credential is serving, refused (3, "answered but
/// degraded") otherwise. The same rule as the daemon's readiness in /v1/health, so `status`
/// and `health` agree on what "healthy" is. No credentials at all is ok. Throws
/// CtlError(unreachable) when the document has no credentials array.
[[nodiscard]] ExitCode status_exit_code(const Document& status);

} // namespace cltoken::ctl

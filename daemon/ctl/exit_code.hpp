// The exit codes of cl-tokenctl, as scripts may rely on them.
#pragma once

namespace cltoken::ctl {

/// What the process exit status tells a script. The numbers are part of the contract.
enum class ExitCode : int {
  ok = 0,
  /// The daemon could not be reached, or its answer was not what the protocol says.
  unreachable = 1,
  /// The command line was wrong; nothing was sent.
  usage = 2,
  /// The daemon answered, but said no (refused) or reported a degraded state.
  refused = 3,
};

/// The exit code for a daemon answer with this HTTP status, before looking at the body.
/// 2xx -> ok; every 4xx and 503 -> refused (the daemon understood and said no: 403 not
/// allowed, 404 unknown, 410 session expired, 429 over budget, 400 e.g. a bad new config on
/// reload, 503 no valid token right now); anything else (3xx, 500, 502...) -> unreachable,
/// because cl-tokend never answers those on purpose and a script should treat them as "the
/// daemon is broken", not as "the daemon refused".
[[nodiscard]] ExitCode exit_code_for_http_status(int status) noexcept;

[[nodiscard]] constexpr int to_int(ExitCode code) noexcept { return static_cast<int>(code); }

} // namespace cltoken::ctl

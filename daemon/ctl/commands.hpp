// The commands of cl-tokenctl: each builds one request, sends it through an Exchange and
// turns the answer into what to print and how to exit. No sockets and no terminal here, so
// tests drive every command with a canned daemon.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "exit_code.hpp"
#include "http_message.hpp"
#include "invocation.hpp"

namespace cltoken::ctl {

/// How to print: the daemon's document (--json) or the human form, and for the status table
/// whether to colour and how wide the terminal is.
struct Presentation {
  bool json = false;
  bool colour = false;
  std::optional<std::size_t> terminal_columns;
};

/// What a command printed (for stdout) and how the process should exit. Failures that end
/// the command are thrown as CtlError instead (one stderr line).
struct Outcome {
  ExitCode code = ExitCode::ok;
  std::string out;
};

/// Reads a secret that must not come from argv (see stdin_secret.hpp); nullopt: none given.
using ReadSecret = std::function<std::optional<std::string>(std::string_view prompt)>;

/// Runs invocation.command once (`status --watch` calls this per frame).
/// Exit codes: see exit_code.hpp; `status` is refused (3) when a credential is not serving
/// (credential_state.hpp), `health` when the daemon is not live and ready.
[[nodiscard]] Outcome run_command(const Invocation& invocation, const Exchange& exchange, const Presentation& presentation,
                                  const ReadSecret& read_secret);

} // namespace cltoken::ctl

// The command line of cl-tokenctl, parsed with CLI11.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "invocation.hpp"

namespace cltoken::ctl {

/// Either a command to run, or text to print on stdout before exiting 0 (--help, --version).
struct ParsedCommandLine {
  std::optional<Invocation> invocation;
  std::string text;
};

/// Parses argv. Throws CtlError(ExitCode::usage) with a one-line message on any usage error:
/// CLI11's own exit codes (105, 106, ...) and its two-line messages are not the contract.
[[nodiscard]] ParsedCommandLine parse_command_line(int argc, const char* const* argv);

/// The same for the arguments after the program name, in order; for tests.
[[nodiscard]] ParsedCommandLine parse_command_line(const std::vector<std::string>& arguments);

} // namespace cltoken::ctl

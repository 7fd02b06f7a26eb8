// The one exception type of cl-tokenctl: what went wrong, and the exit code it means.
#pragma once

#include <stdexcept>
#include <string>

#include "exit_code.hpp"

namespace cltoken::ctl {

/// Thrown wherever a command cannot go on; main() prints what() as the single stderr line
/// and exits with code(). Carrying the code with the message keeps the decision "which exit
/// code" next to the code that knows what happened, not in a catch-all in main.
class CtlError : public std::runtime_error {
public:
  CtlError(ExitCode code, const std::string& what) : std::runtime_error(what), code_(code) {}

  [[nodiscard]] ExitCode code() const noexcept { return code_; }

private:
  ExitCode code_;
};

} // namespace cltoken::ctl

// Runs the built cl-tokenctl as a real process, feeds its stdin, collects stdout and stderr,
// and bounds it with a deadline (a timerfd in the same poll, so the test never sleeps).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ctl_test {

struct ChildResult {
  int exit_code = -1;     ///< Exit status; -1 when killed at the deadline.
  bool timed_out = false; ///< The deadline passed and the child was killed.
  std::string out;
  std::string err;
};

struct ChildOptions {
  std::string stdin_data;
  /// Changes to the test's environment: a value sets the variable, nullopt removes it.
  /// CL_TOKEND_SOCKET and NO_COLOR are always removed unless set here.
  std::map<std::string, std::optional<std::string>> environment;
  std::chrono::milliseconds deadline{10'000};
};

/// Runs CLTOKENCTL_BINARY with `arguments` (after the program name).
ChildResult run_ctl(const std::vector<std::string>& arguments, const ChildOptions& options = {});

} // namespace ctl_test

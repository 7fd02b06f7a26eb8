#pragma once
// Secrets handed over in environment variables (`client_secret_env`): read once, then
// removed from the process's environment block, so /proc/PID/environ (readable by every
// process of the same user) and a core dump no longer show them. A running process's
// environment never changes, so a reload is answered from the value kept here.
#include <optional>
#include <string>

namespace cltoken {

/// The value of NAME as the daemon found it at its first read; empty optional if it was
/// not set. The first read overwrites the value's bytes where the environment keeps them
/// and unsets the variable.
std::optional<std::string> take_secret_variable(const std::string& name);

} // namespace cltoken

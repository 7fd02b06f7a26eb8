// What cl-tokenctl asks about its standard streams (the only place that does).
#pragma once

#include <cstddef>
#include <optional>

namespace cltoken::ctl {

[[nodiscard]] bool stdout_is_terminal() noexcept;
[[nodiscard]] bool stdin_is_terminal() noexcept;

/// Width of the terminal on stdout, or nullopt when stdout is not a terminal.
[[nodiscard]] std::optional<std::size_t> terminal_columns() noexcept;

} // namespace cltoken::ctl

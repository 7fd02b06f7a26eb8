#include "terminal.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

namespace cltoken::ctl {

bool stdout_is_terminal() noexcept { return ::isatty(STDOUT_FILENO) == 1; }

bool stdin_is_terminal() noexcept { return ::isatty(STDIN_FILENO) == 1; }

std::optional<std::size_t> terminal_columns() noexcept {
  struct winsize size {};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) != 0 || size.ws_col == 0) return std::nullopt;
  return static_cast<std::size_t>(size.ws_col);
}

} // namespace cltoken::ctl

#include "stdin_secret.hpp"

#include <iostream>
#include <string>

#include <termios.h>
#include <unistd.h>

#include "ctl_error.hpp"
#include "terminal.hpp"

namespace cltoken::ctl {
namespace {

/// Echo off for its lifetime, restored on every path out (including exceptions).
class EchoOff {
public:
  EchoOff() {
    if (::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    active_ = ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
  }
  ~EchoOff() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

private:
  termios saved_{};
  bool active_ = false;
};

} // namespace

std::optional<std::string> read_secret_line(std::istream& input) {
  std::string line;
  bool any = false;
  for (int c = input.get(); c != std::char_traits<char>::eof(); c = input.get()) {
    any = true;
    if (c == '\n') break;
    if (line.size() == max_secret_length) {
      throw CtlError(ExitCode::usage, "the line on stdin is longer than " + std::to_string(max_secret_length / 1024) + " KiB");
    }
    line += static_cast<char>(c);
  }
  if (!any) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::string trim(std::string_view text) {
  constexpr std::string_view space = " \t\r\n\v\f";
  const auto first = text.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(space);
  return std::string(text.substr(first, last - first + 1));
}

std::optional<std::string> read_secret_from_stdin(std::string_view prompt) {
  if (!stdin_is_terminal()) return read_secret_line(std::cin);
  std::cerr << prompt << std::flush;
  std::optional<std::string> line;
  {
    EchoOff quiet;
    line = read_secret_line(std::cin);
  }
  std::cerr << '\n';
  return line;
}

} // namespace cltoken::ctl

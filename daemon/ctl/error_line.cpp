#include "error_line.hpp"

#include "terminal_text.hpp"

namespace cltoken::ctl {

std::string error_line(std::string_view what) {
  std::string line = "cl-tokenctl: ";
  const std::string text = one_line(what);
  line += text.empty() ? std::string("unknown error") : text;
  line += '\n';
  return line;
}

} // namespace cltoken::ctl

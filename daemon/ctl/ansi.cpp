#include "ansi.hpp"

namespace cltoken::ctl {

std::string paint(std::string_view text, Colour colour) {
  std::string_view code;
  switch (colour) {
  case Colour::none: return std::string(text);
  case Colour::green: code = "32"; break;
  case Colour::cyan: code = "36"; break;
  case Colour::yellow: code = "33"; break;
  case Colour::red: code = "31"; break;
  case Colour::dim: code = "2"; break;
  }
  std::string out = "\x1b[";
  out += code;
  out += 'm';
  out += text;
  out += "\x1b[0m";
  return out;
}

bool colour_wanted(bool stdout_is_terminal, const char* no_color_env, const char* term_env) noexcept {
  if (!stdout_is_terminal) return false;
  if (no_color_env != nullptr && *no_color_env != '\0') return false;
  if (term_env != nullptr && std::string_view(term_env) == "dumb") return false;
  return true;
}

} // namespace cltoken::ctl

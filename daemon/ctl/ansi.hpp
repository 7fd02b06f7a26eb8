// ANSI colour and screen control, and the rule for when to use them.
#pragma once

#include <string>
#include <string_view>

namespace cltoken::ctl {

enum class Colour { none, green, cyan, yellow, red, dim };

/// `text` wrapped in the SGR codes of `colour`, or unchanged when colour is none.
[[nodiscard]] std::string paint(std::string_view text, Colour colour);

/// Home the cursor and clear the screen: how `status --watch` redraws in place.
inline constexpr std::string_view clear_screen = "\x1b[H\x1b[2J";

/// Whether to colour: only on a terminal, never when NO_COLOR is set to anything non-empty
/// (https://no-color.org) or the terminal says it cannot (TERM=dumb). Null means unset.
[[nodiscard]] bool colour_wanted(bool stdout_is_terminal, const char* no_color_env, const char* term_env) noexcept;

} // namespace cltoken::ctl

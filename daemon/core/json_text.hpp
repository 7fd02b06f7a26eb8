#pragma once
// Text JSON carries as it is, recognised without a JSON library: what lets a token be
// spliced into a document, or read out of one, without going through the JSON lexer
// character by character (a JWT is about a kilobyte).
#include <string_view>

namespace cltoken {

/// Whether a JSON string holds these bytes unescaped: printable ASCII but for '"' and
/// '\\'. A JWT (base64url and dots) always is. Branch-free so that the compiler can
/// vectorise it.
inline bool json_verbatim(std::string_view s) {
  unsigned bad = 0;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    bad |= static_cast<unsigned>(c < 0x20) | static_cast<unsigned>(c >= 0x7f) | static_cast<unsigned>(c == '"') |
           static_cast<unsigned>(c == '\\');
  }
  return bad == 0;
}

} // namespace cltoken

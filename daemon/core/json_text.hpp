#pragma once
// Text JSON carries as it is, recognised without a JSON library: what lets a token be
// spliced into a document, or read out of one, without going through the JSON lexer
// character by character (a JWT is about a kilobyte).
#include <cstdint>
#include <cstring>
#include <string_view>

namespace cltoken {

/// Whether a JSON string holds these bytes unescaped: printable ASCII but for '"' and
/// '\\'. A JWT (base64url and dots) always is. Eight bytes at a time (it runs on every
/// token served): each test below is nonzero exactly when some byte of the word matches.
inline bool json_verbatim(std::string_view s) {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  auto has_zero = [](std::uint64_t v) { return (v - ones) & ~v & highs; };
  std::uint64_t bad = 0;
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, s.data() + i, 8);
    bad |= (w & highs)                        // 0x80 and above
           | ((w - ones * 0x20) & ~w & highs) // below 0x20
           | has_zero(w ^ (ones * 0x7f)) | has_zero(w ^ (ones * '"')) | has_zero(w ^ (ones * '\\'));
  }
  for (; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    bad |= static_cast<std::uint64_t>(c < 0x20 || c >= 0x7f || c == '"' || c == '\\');
  }
  return bad == 0;
}

} // namespace cltoken

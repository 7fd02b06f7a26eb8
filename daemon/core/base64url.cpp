#include "core/base64url.hpp"

#include <array>

namespace cltoken {

namespace {

/// Each byte's 6-bit value in the base64url alphabet, or -1: '+', '/', '=' and
/// whitespace are not base64url and refuse the input.
constexpr std::array<signed char, 256> decode_table() {
  std::array<signed char, 256> t{};
  t.fill(-1);
  for (int i = 0; i < 26; ++i) {
    t['A' + i] = static_cast<signed char>(i);
    t['a' + i] = static_cast<signed char>(26 + i);
  }
  for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<signed char>(52 + i);
  t['-'] = 62;
  t['_'] = 63;
  return t;
}

} // namespace

std::optional<std::string> base64url_decode(std::string_view in) {
  // Straight from the text into the result, one allocation: a JWT is three of these per
  // verification (the signature, the payload, the header).
  static constexpr auto table = decode_table();
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out(in.size() / 4 * 3 + 2, '\0');
  std::size_t n = 0;
  unsigned bits = 0;
  unsigned held = 0;
  for (const char c : in) {
    const int v = table[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    bits = bits << 6 | static_cast<unsigned>(v);
    held += 6;
    if (held >= 8) {
      held -= 8;
      out[n++] = static_cast<char>(bits >> held & 0xff);
    }
  }
  out.resize(n); // the last group's left-over bits, as unpadded base64 leaves them, are ignored
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto at = [&](std::size_t k) { return k < bytes.size() ? static_cast<unsigned char>(bytes[k]) : 0u; };
  for (; i < bytes.size(); i += 3) {
    const unsigned v = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    out += alphabet[v >> 18 & 63];
    out += alphabet[v >> 12 & 63];
    if (i + 1 < bytes.size()) out += alphabet[v >> 6 & 63];
    if (i + 2 < bytes.size()) out += alphabet[v & 63];
  }
  return out;
}

} // namespace cltoken

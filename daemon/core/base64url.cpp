#include "core/base64url.hpp"

#include <vector>

#include <openssl/evp.h>

namespace cltoken {

std::optional<std::string> base64url_decode(std::string_view in) {
  std::string b64;
  b64.reserve(in.size() + 3);
  for (char c : in) {
    if (c == '-') b64 += '+';
    else if (c == '_') b64 += '/';
    else if (c == '+' || c == '/' || c == '=') return std::nullopt; // not base64url
    else b64 += c;
  }
  if (b64.size() % 4 == 1) return std::nullopt;
  while (b64.size() % 4 != 0) b64 += '=';
  std::vector<unsigned char> out(b64.size() / 4 * 3 + 1);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (n < 0) return std::nullopt;
  std::size_t len = static_cast<std::size_t>(n);
  // EVP_DecodeBlock counts the padding as zero bytes: take them off again.
  for (std::size_t i = b64.size(); i > 0 && b64[i - 1] == '=' && len > 0; --i) --len;
  return std::string(reinterpret_cast<const char*>(out.data()), len);
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

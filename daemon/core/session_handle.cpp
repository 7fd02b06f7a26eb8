#include "core/session_handle.hpp"

#include <array>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/secret.hpp"

namespace cltoken {

std::optional<std::string> new_session_handle() {
  std::array<unsigned char, 32> bits{};
  if (RAND_bytes(bits.data(), static_cast<int>(bits.size())) != 1) return std::nullopt;
  std::array<unsigned char, 48> b64{}; // 4 * ceil(32 / 3) = 44, plus the NUL
  const int n = EVP_EncodeBlock(b64.data(), bits.data(), static_cast<int>(bits.size()));
  OPENSSL_cleanse(bits.data(), bits.size());
  // "cs_" says what it is (to a person, a secret scanner) and keeps a handle from starting
  // with '-', which command lines would take for an option.
  std::string out = "cs_";
  out.reserve(3 + static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const char c = static_cast<char>(b64[static_cast<std::size_t>(i)]);
    if (c == '=') break;
    out += c == '+' ? '-' : c == '/' ? '_' : c;
  }
  OPENSSL_cleanse(b64.data(), b64.size());
  return out;
}

} // namespace cltoken

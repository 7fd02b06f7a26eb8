#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "core/json_text.hpp"

using namespace cltoken;

namespace {
bool verbatim_bytewise(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
  }
  return true;
}
} // namespace

TEST_CASE("json_verbatim, 32, 16 and 8 bytes at a time, says what a byte-by-byte check says") {
  // Every byte value at every position of strings around each block size, among JWT bytes.
  for (std::size_t len : {1u, 7u, 8u, 9u, 15u, 16u, 17u, 24u, 31u, 32u, 33u, 40u, 48u, 63u, 64u, 65u, 88u}) {
    for (std::size_t at = 0; at < len; ++at)
      for (int b = 0; b < 256; ++b) {
        std::string s(len, 'A');
        s[at] = static_cast<char>(b);
        INFO("len " << len << " at " << at << " byte " << b);
        REQUIRE(json_verbatim(s) == verbatim_bytewise(s));
      }
  }
  std::mt19937 rng(12345);
  for (int n = 0; n < 20000; ++n) {
    std::string s(rng() % 140, 'x');
    for (char& c : s) c = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : 0x20 + rng() % 0x5f);
    REQUIRE(json_verbatim(s) == verbatim_bytewise(s));
  }
  CHECK(json_verbatim(""));
  CHECK(json_verbatim("eyJhbGciOiJSUzUxMiJ9.eyJpc3MiOiJ4In0.c2ln-_"));
}

#pragma once
// Text JSON carries as it is, recognised without a JSON library: what lets a token be
// spliced into a document, or read out of one, without going through the JSON lexer
// character by character (a JWT is about a kilobyte).
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CLTOKEN_JSON_TEXT_AVX2 1
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace cltoken {

#ifdef CLTOKEN_JSON_TEXT_AVX2
/// json_verbatim() over s[i..] thirty-two bytes at a time, as far as whole blocks go (`i`
/// is left after the last); false when one of them holds a byte to escape.
__attribute__((target("avx2"))) inline bool json_verbatim_avx2(std::string_view s, std::size_t& i) {
  const __m256i space = _mm256_set1_epi8(0x20), del = _mm256_set1_epi8(0x7f), quote = _mm256_set1_epi8('"'),
                backslash = _mm256_set1_epi8('\\');
  __m256i bad = _mm256_setzero_si256();
  for (; i + 32 <= s.size(); i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.data() + i));
    // Compared as signed bytes, 0x80 and above are negative: "below 0x20" catches them too.
    bad = _mm256_or_si256(bad, _mm256_or_si256(_mm256_or_si256(_mm256_cmpgt_epi8(space, v), _mm256_cmpeq_epi8(v, del)),
                                               _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash))));
  }
  return _mm256_movemask_epi8(bad) == 0;
}
#endif

/// Whether a JSON string holds these bytes unescaped: printable ASCII but for '"' and
/// '\\'. A JWT (base64url and dots) always is. It runs on every token served, so it looks
/// at thirty-two bytes at a time where the CPU can (AVX2), then sixteen (SSE2, every
/// x86-64), then eight (each test below is nonzero exactly when some byte of the word
/// matches), then one.
inline bool json_verbatim(std::string_view s) {
  std::size_t i = 0;
#ifdef CLTOKEN_JSON_TEXT_AVX2
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2 && !json_verbatim_avx2(s, i)) return false;
#endif
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f), quote = _mm_set1_epi8('"'),
                backslash = _mm_set1_epi8('\\');
  __m128i bad16 = _mm_setzero_si128();
  for (; i + 16 <= s.size(); i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    // Compared as signed bytes, 0x80 and above are negative: "below 0x20" catches them too.
    bad16 = _mm_or_si128(bad16, _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)),
                                             _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash))));
  }
  if (_mm_movemask_epi8(bad16) != 0) return false;
#endif
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  auto has_zero = [](std::uint64_t v) { return (v - ones) & ~v & highs; };
  std::uint64_t bad = 0;
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

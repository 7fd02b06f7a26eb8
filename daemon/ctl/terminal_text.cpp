#include "terminal_text.hpp"

#include <cstdint>

namespace cltoken::ctl {
namespace {

constexpr std::string_view replacement = "\xEF\xBF\xBD"; // U+FFFD
constexpr std::string_view ellipsis = "\xE2\x80\xA6";    // U+2026 "…"

bool is_continuation(unsigned char byte) { return (byte & 0xC0U) == 0x80U; }

/// Length of the well-formed UTF-8 sequence at the start of `text`, 0 when it is not one.
/// Rejects overlong forms, surrogates and code points past U+10FFFF (RFC 3629).
std::size_t sequence_length(std::string_view text, char32_t& code_point) {
  const auto lead = static_cast<unsigned char>(text[0]);
  std::size_t length = 0;
  char32_t minimum = 0;
  if (lead < 0x80U) {
    code_point = lead;
    return 1;
  }
  if ((lead & 0xE0U) == 0xC0U) {
    length = 2;
    code_point = lead & 0x1FU;
    minimum = 0x80;
  } else if ((lead & 0xF0U) == 0xE0U) {
    length = 3;
    code_point = lead & 0x0FU;
    minimum = 0x800;
  } else if ((lead & 0xF8U) == 0xF0U) {
    length = 4;
    code_point = lead & 0x07U;
    minimum = 0x10000;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (!is_continuation(byte)) return 0;
    code_point = (code_point << 6U) | (byte & 0x3FU);
  }
  if (code_point < minimum || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    return 0;
  }
  return length;
}

bool is_space(char32_t c) { return c == U' ' || c == U'\t' || c == U'\n' || c == U'\r' || c == U'\v' || c == U'\f'; }

bool is_control(char32_t c) { return c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F); }

} // namespace

std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  while (!text.empty()) {
    char32_t c = 0;
    const std::size_t length = sequence_length(text, c);
    if (length == 0) {
      // Invalid byte: replace it alone and resynchronise on the next one.
      if (pending_space && !out.empty()) out += ' ';
      pending_space = false;
      out += replacement;
      text.remove_prefix(1);
      continue;
    }
    if (is_space(c)) {
      pending_space = true;
    } else {
      if (pending_space && !out.empty()) out += ' ';
      pending_space = false;
      if (is_control(c)) {
        out += replacement;
      } else {
        out.append(text.substr(0, length));
      }
    }
    text.remove_prefix(length);
  }
  return out;
}

std::size_t display_width(std::string_view utf8) {
  std::size_t width = 0;
  for (const char byte : utf8) {
    if (!is_continuation(static_cast<unsigned char>(byte))) ++width;
  }
  return width;
}

std::string truncate_to_width(std::string_view text, std::size_t width) {
  if (display_width(text) <= width) return std::string(text);
  if (width == 0) return {};
  // Keep width - 1 columns and add the ellipsis.
  const std::size_t keep = width - 1;
  std::size_t columns = 0;
  std::size_t cut = 0;
  while (cut < text.size()) {
    const bool starts_code_point = !is_continuation(static_cast<unsigned char>(text[cut]));
    if (starts_code_point) {
      if (columns == keep) break;
      ++columns;
    }
    ++cut;
  }
  std::string_view kept = text.substr(0, cut);
  // Prefer ending on a word boundary when that loses little: "connection refused by
  // auth.commercelayer.io" reads better as "connection refused by…" than "connection ref…".
  const bool ends_on_word = cut < text.size() && text[cut] == ' ';
  const std::size_t space = kept.rfind(' ');
  if (!ends_on_word && space != std::string_view::npos && space >= keep * 2 / 3) kept = kept.substr(0, space);
  while (!kept.empty() && (kept.back() == ' ' || kept.back() == ',' || kept.back() == ':')) kept.remove_suffix(1);
  std::string out(kept);
  out += ellipsis;
  return out;
}

std::string pad_right(std::string_view text, std::size_t width) {
  std::string out(text);
  const std::size_t used = display_width(text);
  if (used < width) out.append(width - used, ' ');
  return out;
}

} // namespace cltoken::ctl

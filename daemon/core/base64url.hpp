#pragma once
// base64url without padding (RFC 4648 section 5), as JWTs and JWKs write it.
#include <optional>
#include <string>
#include <string_view>

namespace cltoken {

/// The decoded bytes; nullopt for characters outside the base64url alphabet, padding, or
/// a length no encoder produces.
[[nodiscard]] std::optional<std::string> base64url_decode(std::string_view in);

/// Bytes as base64url, no padding.
[[nodiscard]] std::string base64url_encode(std::string_view bytes);

} // namespace cltoken

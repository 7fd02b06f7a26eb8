// Percent-encoding for the names and session handles that cl-tokenctl puts in a path.
#pragma once

#include <string>
#include <string_view>

namespace cltoken::ctl {

/// `text` with everything but RFC 3986 unreserved characters percent-encoded, so a name
/// like "a/b" or "x?y" stays one path segment instead of changing the route.
[[nodiscard]] std::string url_segment(std::string_view text);

} // namespace cltoken::ctl

#pragma once
// Session handles: "cs_" and 256 bits from OpenSSL's CSPRNG, base64url without padding
// (46 characters, safe in a URL path segment and on a command line).
#include <optional>
#include <string>

namespace cltoken {

/// A new handle; nullopt only when the CSPRNG fails (then no session is created).
std::optional<std::string> new_session_handle();

} // namespace cltoken

#pragma once
// The body of POST /v1/tokens/{name}/invalidate
// (invalidate-request.schema.json):
// {"access_token":"..."}. Plain parsing, no I/O; the token leaves the JSON as a
// Secret.
#include <optional>
#include <string>

#include "core/secret.hpp"

namespace cltoken {

/// The reported token, or nullopt when the body is not that document. Wipes
/// `body` and every string parsed out of it.
[[nodiscard]] std::optional<Secret> parse_invalidate_request(std::string& body);

} // namespace cltoken

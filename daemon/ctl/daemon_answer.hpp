// What an answer of cl-tokend means: a JSON document, or a refusal with the daemon's own
// sentence. Every command goes through here, so "not JSON", "not an object" and "HTTP 403"
// are worded (and mapped to exit codes) the same way everywhere.
#pragma once

#include <string>

#include "document.hpp"
#include "http_message.hpp"

namespace cltoken::ctl {

/// The body as a JSON object. Throws CtlError(unreachable) when it is not JSON or not an
/// object: whatever answered is not speaking the protocol.
[[nodiscard]] Document parse_document(const Response& response);

/// The document of a 2xx answer; for any other status throws CtlError with
/// exit_code_for_http_status and refusal_message.
[[nodiscard]] Document expect_success(const Response& response);

/// The sentence for a non-2xx answer: the daemon's {"error":{"message"}} when there is one,
/// else "cl-tokend answered HTTP 404 (code)"; with " (retry in 30s)" when the answer carries
/// Retry-After. Throws CtlError(unreachable) when the body is neither empty nor JSON.
[[nodiscard]] std::string refusal_message(const Response& response);

/// A string field that must be printable on one line and pasted into a shell: an access
/// token or a session handle. Throws CtlError(unreachable) when it is missing, empty, or
/// holds white space or control characters, so `$(cl-tokenctl token x)` can never expand
/// to something surprising.
[[nodiscard]] std::string expect_opaque_string(const Document& document, const char* field);

} // namespace cltoken::ctl

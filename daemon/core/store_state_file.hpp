#pragma once
// The state file's content (store.backend = "file"): a small JSON document listing one
// sealed record per credential. Credential name, identity fingerprint and expiry sit in
// clear beside each record so the daemon can tell "another identity" or "expired" from
// "tampered" without opening it; all three are bound to the record by its associated data
// or its sealed content, so editing them only makes the record fail to load.
//
//   {"format": "cl-tokend state", "version": 1,
//    "records": [{"credential": "...", "identity": "<64 hex>", "expires_at_ms": N,
//                 "sealed": "<base64 of sealed_token.hpp's layout>"}]}
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"

namespace cltoken {

struct StateRecord {
  std::string credential;
  std::string identity;
  WallTime expires_at{};
  std::string sealed; ///< raw bytes, base64 in the file
};

[[nodiscard]] std::string render_state_file(const std::vector<StateRecord>& records);

/// Parses a whole state file; nullopt with `error` set when it is not one (a file that is
/// not JSON, of another format or version, or with a malformed record is refused whole:
/// the daemon then starts as if there were none).
[[nodiscard]] std::optional<std::vector<StateRecord>> parse_state_file(std::string_view text, std::string& error);

} // namespace cltoken

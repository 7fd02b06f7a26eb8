#pragma once
// The state file's content (store.backend = "file"): a small JSON document listing one
// sealed record per credential. Credential name, identity fingerprint and expiry sit in
// clear beside each record so the daemon can tell "another identity" or "expired" from
// "tampered" without opening it; all three are bound to the record by its associated data
// or its sealed content, so editing them only makes the record fail to load.
//
//   {"format": "cl-tokend state", "version": 1,
//    "records": [{"credential": "...", "identity": "<64 hex>", "expires_at_ms": N, "generation": N,
//                 "sealed": "<base64 of sealed_token.hpp's layout>"}],
//    "key_sets": [{"identity": "<64 hex>", "fetched_at_ms": N,
//                  "sealed": "<base64 of sealed_key_set.hpp's layout>"}]}
//
// "key_sets" and "generation" are optional (files written before they existed have none).
#include <cstdint>
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
  std::string sealed;           ///< raw bytes, base64 in the file
  std::uint64_t generation = 0; ///< in clear for counting; the sealed copy is the one trusted
};

/// The auth server's key set, sealed (core/sealed_key_set.hpp); identity and fetch time in
/// clear for the same reason as a record's.
struct StateKeySet {
  std::string identity;
  WallTime fetched_at{};
  std::string sealed; ///< raw bytes, base64 in the file
};

struct StateFile {
  std::vector<StateRecord> records;
  std::vector<StateKeySet> key_sets;
};

[[nodiscard]] std::string render_state_file(const StateFile& state);

/// Parses a whole state file; nullopt with `error` set when it is not one (a file that is
/// not JSON, of another format or version, or with a malformed record or key set is refused whole:
/// the daemon then starts as if there were none).
[[nodiscard]] std::optional<StateFile> parse_state_file(std::string_view text, std::string& error);

} // namespace cltoken

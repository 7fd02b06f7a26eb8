#pragma once
// The auth server's key set as the token store keeps it (docs/store.md, "The key set"), so
// that a restart with a warm store verifies tokens without asking the auth server again.
//
// A key set is public, but what the daemon trusts must not be something a writer of the
// state file or of Redis can choose: a planted key would make forged customer tokens pass
// POST /v1/verify. So it is sealed exactly like a token record (AES-256-GCM, HKDF-SHA256
// from key material the store never holds), under its own magic and HKDF info so that a
// token record can never be opened as a key set or the other way round:
//
//   "CLKS" | version 0x01 | salt (16) | nonce (12) | ciphertext | tag (16)
//   key = HKDF-SHA256(ikm = material, salt = salt, info = "cl-tokend key set record v1", L = 32)
//   associated data = the 33 header bytes | identity (hex)
//   plaintext = {"auth_url", "issuer", "fetched_at_ms", "jwks"} (compact JSON)
//
// material = the store key, else the client secret of the first credential (by name) that
// has one; identity = a keyed hash of auth_url and issuer under that material.
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/sealed_token.hpp"
#include "core/secret.hpp"

namespace cltoken {

constexpr std::string_view key_set_magic = "CLKS";

/// A key set as fetched from the auth server, with where and when.
struct StoredKeySet {
  std::string auth_url;
  std::string issuer;
  WallTime fetched_at{};
  std::string jwks; ///< the JWKS document (core/jwks.hpp jwks_document())
};

/// What seals the key set of one auth server and issuer, copied out of the config.
struct KeySetKey {
  std::string identity; ///< 64 hex digits, kept in clear next to the record
  Secret material;
  std::string auth_url;
  std::string issuer;
};

/// The key for `config`'s auth server: nullopt when the config has neither a store key
/// nor a credential with a client secret (the key set is then not stored).
[[nodiscard]] std::optional<KeySetKey> key_set_key(const Config& config);

/// Seals with the given salt (16 bytes) and nonce (12 bytes): for known-answer tests.
[[nodiscard]] std::string seal_key_set(const StoredKeySet& set, const KeySetKey& key, std::string_view salt,
                                       std::string_view nonce);
/// Seals with a fresh random salt and nonce.
[[nodiscard]] std::string seal_key_set(const StoredKeySet& set, const KeySetKey& key);

/// Opens a record expected to be sealed under `key`, for its auth server and issuer.
/// Never throws for bad input.
[[nodiscard]] std::variant<StoredKeySet, UnsealError> unseal_key_set(std::string_view sealed, const KeySetKey& key);

/// Why a stored set that opened must still not be trusted at `now`, or nullopt: fetched
/// more than `max_age` ago, or "in the future" by more than a minute (a clock that jumped).
[[nodiscard]] std::optional<std::string> stale_key_set(const StoredKeySet& set, WallTime now, Seconds max_age);

} // namespace cltoken

#pragma once
// A stored token sealed for the state file or Redis: AES-256-GCM under a key derived with
// HKDF-SHA256 from the credential's key material (store_identity.hpp), with the credential
// name and identity fingerprint as associated data, so that a record moved to another
// credential, or kept past an identity change, fails to open. The layout is documented in
// docs/store.md and checked against Python's `cryptography` in tests/integration/test_store_file.py.
//
//   "CLTK" | version 0x01 | salt (16) | nonce (12) | ciphertext | tag (16)
//   key = HKDF-SHA256(ikm = material, salt = salt, info = "cl-tokend token record v1", L = 32)
//   associated data = the 33 header bytes | credential | 0x00 | identity (hex)
//   plaintext = encode_record() (core/store_record.hpp)
#include <string>
#include <string_view>
#include <variant>

#include "core/secret.hpp"
#include "core/store_record.hpp"

namespace cltoken {

constexpr std::string_view sealed_magic = "CLTK";
constexpr unsigned char sealed_version = 1;
constexpr std::size_t sealed_salt_size = 16;

/// Why a sealed record was refused. `message` is a sentence for the log: it never holds
/// the record, the key or the token.
struct UnsealError {
  enum class Kind {
    malformed,      ///< not a cl-tokend record, or cut short
    version,        ///< written by a newer cl-tokend
    authentication, ///< altered, or sealed with another key, credential or identity
    mismatch,       ///< opened, but the content names another credential or identity
  };
  Kind kind = Kind::malformed;
  std::string message;
};

/// Seals with the given salt (16 bytes) and nonce (12 bytes): for known-answer tests.
[[nodiscard]] std::string seal_token(const StoredToken& t, const Secret& material, std::string_view salt, std::string_view nonce);
/// Seals with a fresh random salt and nonce: what the stores use.
[[nodiscard]] std::string seal_token(const StoredToken& t, const Secret& material);

/// Opens a record expected to belong to `credential` with `identity`. Never throws for
/// bad input: anything wrong is an UnsealError.
[[nodiscard]] std::variant<StoredToken, UnsealError> unseal_token(std::string_view sealed, const Secret& material,
                                                                  std::string_view credential, std::string_view identity);

} // namespace cltoken

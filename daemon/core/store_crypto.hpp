#pragma once
// The cryptographic primitives the token store seals records with, as thin wrappers over
// OpenSSL's EVP interfaces: HKDF-SHA256 (RFC 5869), HMAC-SHA256 and AES-256-GCM. Byte
// strings travel as std::string; key material that must not linger travels as Secret.
// No I/O except the kernel's random generator in random_bytes().
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/secret.hpp"

namespace cltoken::store_crypto {

constexpr std::size_t key_size = 32;   ///< AES-256
constexpr std::size_t nonce_size = 12; ///< GCM's recommended IV length
constexpr std::size_t tag_size = 16;   ///< full-length GCM tag

/// HKDF-SHA256 with OpenSSL's EVP_PKEY_HKDF: `length` bytes of output key material.
/// Throws std::runtime_error only if OpenSSL itself fails.
[[nodiscard]] Secret hkdf_sha256(std::string_view ikm, std::string_view salt, std::string_view info, std::size_t length);

/// HMAC-SHA256 of `data` under `key`: 32 raw bytes.
[[nodiscard]] std::string hmac_sha256(std::string_view key, std::string_view data);

/// AES-256-GCM encryption: ciphertext followed by the 16-byte tag. `key` is 32 bytes,
/// `nonce` 12 bytes (std::invalid_argument otherwise).
[[nodiscard]] std::string aes256gcm_seal(std::string_view key, std::string_view nonce, std::string_view aad,
                                         std::string_view plaintext);

/// The inverse: the plaintext, or nullopt when the tag does not verify (altered data,
/// another key, nonce or associated data). Never throws for bad input.
[[nodiscard]] std::optional<Secret> aes256gcm_open(std::string_view key, std::string_view nonce, std::string_view aad,
                                                   std::string_view sealed);

/// `n` bytes from OpenSSL's CSPRNG (salts, nonces, lock owners).
[[nodiscard]] std::string random_bytes(std::size_t n);

/// Lower-case hex, and back (nullopt for odd length or a non-hex digit).
[[nodiscard]] std::string to_hex(std::string_view bytes);
[[nodiscard]] std::optional<std::string> from_hex(std::string_view hex);

/// Standard base64 with padding (RFC 4648 section 4), and back (nullopt when malformed).
[[nodiscard]] std::string to_base64(std::string_view bytes);
[[nodiscard]] std::optional<std::string> from_base64(std::string_view text);

} // namespace cltoken::store_crypto

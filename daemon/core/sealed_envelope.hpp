#pragma once
// The one sealing layout every stored record uses (token, key set, customer session),
// told apart by a 4-byte magic and the HKDF info, so that no kind of record opens as
// another:
//
//   MAGIC | version 0x01 | salt (16) | nonce (12) | AES-256-GCM ciphertext | tag (16)
//   key = HKDF-SHA256(ikm = material, salt = salt, info = INFO, L = 32)
//   associated data = the 33 header bytes | what the kind of record binds to it
#include <string>
#include <string_view>
#include <variant>

#include "core/secret.hpp"
#include "core/sealed_token.hpp"

namespace cltoken {

struct EnvelopeKind {
  std::string_view magic; ///< 4 bytes
  std::string_view info;  ///< HKDF info
  std::string_view what;  ///< "token record", for error messages
};

/// Seals `plaintext` with the given salt (16 bytes) and nonce (12 bytes); `bound` is
/// appended to the header as associated data. std::invalid_argument for wrong sizes.
[[nodiscard]] std::string seal_envelope(const EnvelopeKind& kind, const Secret& material, std::string_view bound,
                                        std::string_view plaintext, std::string_view salt, std::string_view nonce);
/// Seals with a fresh random salt and nonce.
[[nodiscard]] std::string seal_envelope(const EnvelopeKind& kind, const Secret& material, std::string_view bound,
                                        std::string_view plaintext);
/// The plaintext, or why not (malformed, another version, failed authentication). Never
/// throws for bad input.
[[nodiscard]] std::variant<Secret, UnsealError> open_envelope(const EnvelopeKind& kind, std::string_view sealed,
                                                              const Secret& material, std::string_view bound);

} // namespace cltoken

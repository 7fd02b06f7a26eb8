#include "core/sealed_envelope.hpp"

#include <stdexcept>

#include "core/store_crypto.hpp"

namespace cltoken {

namespace {

constexpr unsigned char envelope_version = 1;

std::size_t header_size(const EnvelopeKind& kind) { return kind.magic.size() + 1 + sealed_salt_size + store_crypto::nonce_size; }

UnsealError error(UnsealError::Kind kind, std::string message) { return UnsealError{kind, std::move(message)}; }

} // namespace

std::string seal_envelope(const EnvelopeKind& kind, const Secret& material, std::string_view bound, std::string_view plaintext,
                          std::string_view salt, std::string_view nonce) {
  if (salt.size() != sealed_salt_size || nonce.size() != store_crypto::nonce_size)
    throw std::invalid_argument("sealing: salt must be 16 bytes and nonce 12 bytes");
  std::string header(kind.magic);
  header.push_back(static_cast<char>(envelope_version));
  header.append(salt);
  header.append(nonce);
  const Secret key = store_crypto::hkdf_sha256(material.reveal(), salt, kind.info, store_crypto::key_size);
  return header + store_crypto::aes256gcm_seal(key.reveal(), nonce, header + std::string(bound), plaintext);
}

std::string seal_envelope(const EnvelopeKind& kind, const Secret& material, std::string_view bound, std::string_view plaintext) {
  return seal_envelope(kind, material, bound, plaintext, store_crypto::random_bytes(sealed_salt_size),
                       store_crypto::random_bytes(store_crypto::nonce_size));
}

std::variant<Secret, UnsealError> open_envelope(const EnvelopeKind& kind, std::string_view sealed, const Secret& material,
                                                std::string_view bound) {
  const std::string what(kind.what);
  if (sealed.size() < kind.magic.size() || sealed.substr(0, kind.magic.size()) != kind.magic)
    return error(UnsealError::Kind::malformed, "not a cl-tokend " + what);
  if (sealed.size() > kind.magic.size() && static_cast<unsigned char>(sealed[kind.magic.size()]) != envelope_version)
    return error(UnsealError::Kind::version, what + " version " +
                                                 std::to_string(static_cast<unsigned char>(sealed[kind.magic.size()])) +
                                                 " is not supported by this cl-tokend (version 1)");
  const std::size_t head = header_size(kind);
  if (sealed.size() < head + store_crypto::tag_size) return error(UnsealError::Kind::malformed, what + " is cut short");
  const std::string_view header = sealed.substr(0, head);
  const std::string_view salt = header.substr(kind.magic.size() + 1, sealed_salt_size);
  const std::string_view nonce = header.substr(kind.magic.size() + 1 + sealed_salt_size);
  const Secret key = store_crypto::hkdf_sha256(material.reveal(), salt, kind.info, store_crypto::key_size);
  auto plaintext =
      store_crypto::aes256gcm_open(key.reveal(), nonce, std::string(header) + std::string(bound), sealed.substr(head));
  if (!plaintext)
    return error(UnsealError::Kind::authentication,
                 what + " failed authentication: it was altered, or sealed with another key or for another owner");
  return std::move(*plaintext);
}

} // namespace cltoken

#include "core/sealed_token.hpp"

#include <stdexcept>

#include "core/store_crypto.hpp"

namespace cltoken {

namespace {

constexpr std::string_view record_info = "cl-tokend token record v1";
constexpr std::size_t header_size = sealed_magic.size() + 1 + sealed_salt_size + store_crypto::nonce_size;

std::string associated_data(std::string_view header, std::string_view credential, std::string_view identity) {
  std::string aad(header);
  aad.append(credential);
  aad.push_back('\0'); // credential names never contain NUL (config.cpp valid_name)
  aad.append(identity);
  return aad;
}

Secret record_key(const Secret& material, std::string_view salt) {
  return store_crypto::hkdf_sha256(material.reveal(), salt, record_info, store_crypto::key_size);
}

UnsealError error(UnsealError::Kind kind, std::string message) { return UnsealError{kind, std::move(message)}; }

} // namespace

std::string seal_token(const StoredToken& t, const Secret& material, std::string_view salt, std::string_view nonce) {
  if (salt.size() != sealed_salt_size || nonce.size() != store_crypto::nonce_size)
    throw std::invalid_argument("seal_token: salt must be 16 bytes and nonce 12 bytes");
  std::string header(sealed_magic);
  header.push_back(static_cast<char>(sealed_version));
  header.append(salt);
  header.append(nonce);
  const Secret key = record_key(material, salt);
  std::string plaintext = encode_record(t);
  std::string sealed;
  try {
    sealed = store_crypto::aes256gcm_seal(key.reveal(), nonce, associated_data(header, t.credential, t.identity), plaintext);
  } catch (...) {
    wipe(plaintext);
    throw;
  }
  wipe(plaintext);
  return header + sealed;
}

std::string seal_token(const StoredToken& t, const Secret& material) {
  return seal_token(t, material, store_crypto::random_bytes(sealed_salt_size),
                    store_crypto::random_bytes(store_crypto::nonce_size));
}

std::variant<StoredToken, UnsealError> unseal_token(std::string_view sealed, const Secret& material, std::string_view credential,
                                                    std::string_view identity) {
  if (sealed.size() < sealed_magic.size() || sealed.substr(0, sealed_magic.size()) != sealed_magic)
    return error(UnsealError::Kind::malformed, "not a cl-tokend token record");
  if (sealed.size() > sealed_magic.size() && static_cast<unsigned char>(sealed[sealed_magic.size()]) != sealed_version)
    return error(UnsealError::Kind::version, "token record version " +
                                                 std::to_string(static_cast<unsigned char>(sealed[sealed_magic.size()])) +
                                                 " is not supported by this cl-tokend (version 1)");
  if (sealed.size() < header_size + store_crypto::tag_size)
    return error(UnsealError::Kind::malformed, "token record is cut short");
  const std::string_view header = sealed.substr(0, header_size);
  const std::string_view salt = header.substr(sealed_magic.size() + 1, sealed_salt_size);
  const std::string_view nonce = header.substr(sealed_magic.size() + 1 + sealed_salt_size);
  const Secret key = record_key(material, salt);
  auto plaintext = store_crypto::aes256gcm_open(key.reveal(), nonce, associated_data(header, credential, identity),
                                                sealed.substr(header_size));
  if (!plaintext)
    return error(UnsealError::Kind::authentication,
                 "token record failed authentication: it was altered, or sealed with another key, for another "
                 "credential or for another identity");
  std::string why;
  auto record = decode_record(plaintext->reveal(), why);
  if (!record) return error(UnsealError::Kind::malformed, "token record content is invalid: " + why);
  // Authenticated data already binds these; checking the content too costs nothing and
  // catches a writer that sealed one credential's token under another's name.
  if (record->credential != credential || record->identity != identity)
    return error(UnsealError::Kind::mismatch, "token record names another credential or identity");
  return std::move(*record);
}

} // namespace cltoken

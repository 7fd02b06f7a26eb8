#include "core/sealed_key_set.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/store_crypto.hpp"

namespace cltoken {

namespace {

using json = nlohmann::ordered_json;

constexpr unsigned char key_set_version = 1;
constexpr std::string_view record_info = "cl-tokend key set record v1";
constexpr std::string_view identity_info = "cl-tokend key set identity v1";
constexpr std::size_t header_size = key_set_magic.size() + 1 + sealed_salt_size + store_crypto::nonce_size;
/// A clock that moved backwards by less than this does not make a fresh set unusable.
constexpr Seconds future_slack{60};

std::int64_t unix_ms(WallTime t) { return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count(); }

/// Length-prefixed, so that ("ab","c") and ("a","bc") never hash alike.
void field(std::string& out, std::string_view value) {
  const auto n = static_cast<std::uint32_t>(value.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(value);
}

UnsealError error(UnsealError::Kind kind, std::string message) { return UnsealError{kind, std::move(message)}; }

} // namespace

std::optional<KeySetKey> key_set_key(const Config& config) {
  const Secret* material = config.store.key ? &*config.store.key : nullptr;
  if (material == nullptr) {
    // The first by name, so that the choice does not depend on the order of the file.
    const CredentialConfig* first = nullptr;
    for (const auto& c : config.credentials)
      if (c.client_secret && (first == nullptr || c.name < first->name)) first = &c;
    if (first != nullptr) material = &*first->client_secret;
  }
  if (material == nullptr) return std::nullopt;
  const std::string issuer = config.upstream.issuer.empty() ? config.upstream.auth_url.text : config.upstream.issuer;
  const Secret id_key = store_crypto::hkdf_sha256(material->reveal(), "", identity_info, store_crypto::key_size);
  std::string data;
  field(data, config.upstream.auth_url.text);
  field(data, issuer);
  return KeySetKey{store_crypto::to_hex(store_crypto::hmac_sha256(id_key.reveal(), data)), *material,
                   config.upstream.auth_url.text, issuer};
}

std::string seal_key_set(const StoredKeySet& set, const KeySetKey& key, std::string_view salt, std::string_view nonce) {
  if (salt.size() != sealed_salt_size || nonce.size() != store_crypto::nonce_size)
    throw std::invalid_argument("seal_key_set: salt must be 16 bytes and nonce 12 bytes");
  std::string header(key_set_magic);
  header.push_back(static_cast<char>(key_set_version));
  header.append(salt);
  header.append(nonce);
  const Secret k = store_crypto::hkdf_sha256(key.material.reveal(), salt, record_info, store_crypto::key_size);
  const std::string plaintext = json{
      {"auth_url", set.auth_url},
      {"issuer", set.issuer},
      {"fetched_at_ms", unix_ms(set.fetched_at)},
      {"jwks", set.jwks}}.dump();
  return header + store_crypto::aes256gcm_seal(k.reveal(), nonce, header + key.identity, plaintext);
}

std::string seal_key_set(const StoredKeySet& set, const KeySetKey& key) {
  return seal_key_set(set, key, store_crypto::random_bytes(sealed_salt_size),
                      store_crypto::random_bytes(store_crypto::nonce_size));
}

std::variant<StoredKeySet, UnsealError> unseal_key_set(std::string_view sealed, const KeySetKey& key) {
  if (sealed.size() < key_set_magic.size() || sealed.substr(0, key_set_magic.size()) != key_set_magic)
    return error(UnsealError::Kind::malformed, "not a cl-tokend key set record");
  if (sealed.size() > key_set_magic.size() && static_cast<unsigned char>(sealed[key_set_magic.size()]) != key_set_version)
    return error(UnsealError::Kind::version,
                 fmt::format("key set record version {} is not supported by this cl-tokend (version 1)",
                             static_cast<unsigned char>(sealed[key_set_magic.size()])));
  if (sealed.size() < header_size + store_crypto::tag_size)
    return error(UnsealError::Kind::malformed, "key set record is cut short");
  const std::string_view header = sealed.substr(0, header_size);
  const std::string_view salt = header.substr(key_set_magic.size() + 1, sealed_salt_size);
  const std::string_view nonce = header.substr(key_set_magic.size() + 1 + sealed_salt_size);
  const Secret k = store_crypto::hkdf_sha256(key.material.reveal(), salt, record_info, store_crypto::key_size);
  auto plaintext =
      store_crypto::aes256gcm_open(k.reveal(), nonce, std::string(header) + key.identity, sealed.substr(header_size));
  if (!plaintext)
    return error(UnsealError::Kind::authentication,
                 "key set record failed authentication: it was altered, or sealed with another key or for another "
                 "auth server");
  const json j = json::parse(plaintext->reveal(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("auth_url") || !j["auth_url"].is_string() || !j.contains("issuer") ||
      !j["issuer"].is_string() || !j.contains("fetched_at_ms") || !j["fetched_at_ms"].is_number_integer() ||
      !j.contains("jwks") || !j["jwks"].is_string())
    return error(UnsealError::Kind::malformed, "key set record content is invalid");
  StoredKeySet out;
  out.auth_url = j["auth_url"].get<std::string>();
  out.issuer = j["issuer"].get<std::string>();
  out.fetched_at = WallTime(std::chrono::duration_cast<WallTime::duration>(Millis(j["fetched_at_ms"].get<std::int64_t>())));
  out.jwks = j["jwks"].get<std::string>();
  // The identity binds these already; checking the content as well catches a writer that
  // sealed one auth server's keys under another's identity.
  if (out.auth_url != key.auth_url || out.issuer != key.issuer)
    return error(UnsealError::Kind::mismatch, "key set record is for another auth server or issuer");
  return out;
}

std::optional<std::string> stale_key_set(const StoredKeySet& set, WallTime now, Seconds max_age) {
  if (set.fetched_at > now + future_slack) return std::string("it was fetched in the future (has the clock moved back?)");
  const auto age = std::chrono::floor<Seconds>(now - set.fetched_at);
  if (age > max_age)
    return fmt::format("it was fetched {} s ago, more than upstream.jwks_max_age_s ({} s)", age.count(), max_age.count());
  return std::nullopt;
}

} // namespace cltoken

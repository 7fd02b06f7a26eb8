#include "core/store_identity.hpp"

#include <cstdint>

#include "core/store_crypto.hpp"

namespace cltoken {

const Secret* store_key_material(const CredentialConfig& c, const StoreConfig& store) {
  if (c.client_secret) return &*c.client_secret;
  if (store.key) return &*store.key;
  return nullptr;
}

namespace {

/// Length-prefixed, so that ("ab","c") and ("a","bc") never hash alike.
void field(std::string& out, std::string_view value) {
  const auto n = static_cast<std::uint32_t>(value.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(value);
}

} // namespace

std::string identity_fingerprint(const Secret& material, const CredentialConfig& c, std::string_view auth_url) {
  const Secret key = store_crypto::hkdf_sha256(material.reveal(), "", "cl-tokend identity v1", store_crypto::key_size);
  std::string data;
  field(data, to_string(c.kind));
  field(data, c.client_id);
  field(data, c.scope);
  field(data, auth_url);
  return store_crypto::to_hex(store_crypto::hmac_sha256(key.reveal(), data));
}

std::optional<SealingKey> sealing_key(const CredentialConfig& c, std::string_view auth_url, const StoreConfig& store) {
  const Secret* material = store_key_material(c, store);
  if (material == nullptr) return std::nullopt;
  return SealingKey{c.name, identity_fingerprint(*material, c, auth_url), *material};
}

} // namespace cltoken

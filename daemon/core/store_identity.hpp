#pragma once
// Which stored token belongs to which credential, and which key protects it.
//
// A credential's identity is its kind, client_id, scope and auth server (and its secret,
// through the key). Its fingerprint is a keyed hash of those, so that a token obtained
// for one identity is never loaded for another (a changed identity drops the
// token), and so that the fingerprint, which the state file and Redis keep in clear,
// says nothing about the client_id or scope to someone without the key.
#include <optional>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/secret.hpp"

namespace cltoken {

/// The secret a credential's records are sealed with: its client secret, else the store
/// key (store.key_file / store.key_credential), else nullptr (the credential cannot be
/// stored; load_config refuses that combination for the file and redis backends).
[[nodiscard]] const Secret* store_key_material(const CredentialConfig& c, const StoreConfig& store);

/// 64 hex digits: HMAC-SHA256 under a key derived (HKDF-SHA256) from `material`, over the
/// length-prefixed kind, client_id, scope and auth_url.
[[nodiscard]] std::string identity_fingerprint(const Secret& material, const CredentialConfig& c, std::string_view auth_url);

/// What a store needs to seal and find one credential's token, copied out of the config
/// so that a reload during a store operation cannot change it underneath.
struct SealingKey {
  std::string credential;
  std::string identity; ///< identity_fingerprint()
  Secret material;
};
/// nullopt when the credential has no key material (see store_key_material()).
[[nodiscard]] std::optional<SealingKey> sealing_key(const CredentialConfig& c, std::string_view auth_url,
                                                    const StoreConfig& store);

} // namespace cltoken

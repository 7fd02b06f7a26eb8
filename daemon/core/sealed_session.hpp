#pragma once
// A customer session as a store keeps it (docs/store.md, "Customer sessions"): sealed like
// a token record, under its own magic and HKDF info so that neither kind of record can be
// opened as the other, and bound to the session's store id so that a record cannot be
// moved under another session's key.
//
//   "CLSS" | version 0x01 | salt (16) | nonce (12) | ciphertext | tag (16)
//   key = HKDF-SHA256(ikm = material, salt = salt, info = "cl-tokend session record v1", L = 32)
//   associated data = the 33 header bytes | credential | 0x00 | identity (hex) | 0x00 | store id (hex)
//   plaintext = encode_session() (compact JSON, times in Unix milliseconds)
//
// The store id is a keyed hash of the session's key (the SHA-256 of its handle): what a
// store files the record under, in clear, without revealing the handle or letting anyone
// without the key material tell which handle it belongs to.
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/clock.hpp"
#include "core/sealed_token.hpp"
#include "core/secret.hpp"
#include "core/session_record.hpp"
#include "core/session_table.hpp"

namespace cltoken {

constexpr std::string_view session_magic = "CLSS";

struct StoredSession {
  std::string credential; ///< the sales channel's [credentials.NAME]
  std::string identity;   ///< identity_fingerprint() of that credential
  std::string id;         ///< session_store_id(): 64 hex digits
  SessionKey key{};       ///< the SHA-256 of the handle, sealed: what a daemon that reads the record back files it under
  /// Who may use it, as this host's uid and as a name that means the same on every host of
  /// a fleet ("user:NAME", or "uid:N" for a uid without a name). A file store compares the
  /// uid; a shared store the name (docs/customer-sessions.md, "Whose session").
  uid_t owner_uid = static_cast<uid_t>(-1);
  std::string owner_name;
  Secret access_token;
  std::optional<Secret> refresh_token;
  std::string token_type = "bearer";
  std::string scope;
  std::string owner_id; ///< the customer (the token's owner), as the auth server named it
  WallTime obtained_at{};
  WallTime expires_at{};
  WallTime refresh_at{};
  std::uint64_t generation = 1;
};

/// The store id of the session `key` of `credential`: HMAC-SHA256 under a key derived
/// (HKDF-SHA256, info "cl-tokend session id v1") from `material`, over the credential's
/// name and the key; 64 hex digits.
[[nodiscard]] std::string session_store_id(const Secret& material, std::string_view credential, const SessionKey& key);

/// The plaintext inside a sealed session (holds the tokens in clear: wipe() it once sealed).
[[nodiscard]] std::string encode_session(const StoredSession& s);
/// The inverse; nullopt with `error` set for anything that is not a well-formed session.
[[nodiscard]] std::optional<StoredSession> decode_session(std::string_view json, std::string& error);

/// Seals with the given salt (16 bytes) and nonce (12 bytes): for known-answer tests.
[[nodiscard]] std::string seal_session(const StoredSession& s, const Secret& material, std::string_view salt,
                                       std::string_view nonce);
/// Seals with a fresh random salt and nonce.
[[nodiscard]] std::string seal_session(const StoredSession& s, const Secret& material);
/// Opens a session expected to be `credential`'s with `identity`, filed under `id`. Never
/// throws for bad input.
[[nodiscard]] std::variant<StoredSession, UnsealError> unseal_session(std::string_view sealed, const Secret& material,
                                                                      std::string_view credential, std::string_view identity,
                                                                      std::string_view id);

/// A held session as a stored one: steady times mapped to wall time with `clock`.
[[nodiscard]] StoredSession to_stored_session(const SessionRecord& r, const SessionKey& key, std::string identity, std::string id,
                                              std::string owner_name, const Clock& clock);
/// A stored session as one to hold, owned by this host's `owner`: wall times mapped to
/// steady time with `clock`.
[[nodiscard]] SessionRecord to_session_record(const StoredSession& s, uid_t owner, const Clock& clock);

} // namespace cltoken

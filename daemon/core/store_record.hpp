#pragma once
// One stored token: what survives a restart (state file) or travels between daemons
// (Redis), before sealing. Times are wall-clock, because a steady clock means nothing in
// another process; the broker maps them back onto its own steady clock when it loads one.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.hpp"
#include "core/credential_state.hpp"
#include "core/secret.hpp"

namespace cltoken {

struct StoredToken {
  std::string credential; ///< the [credentials.NAME] it belongs to
  std::string identity;   ///< identity_fingerprint() of the credential it was obtained for
  Secret access_token;
  std::string token_type = "bearer";
  std::string scope;
  WallTime obtained_at{}; ///< when the request that got it was sent
  WallTime expires_at{};  ///< obtained_at + expires_in
  /// The state file's count of saves and removals of this credential's token when this one
  /// was saved (docs/store.md, "Rolled-back files"); 0: not counted (Redis, older files).
  std::uint64_t generation = 0;
};

/// The plaintext inside a sealed record: a JSON object, times in Unix milliseconds. The
/// result holds the token in clear: wipe() it once sealed.
[[nodiscard]] std::string encode_record(const StoredToken& t);
/// The inverse; nullopt with `error` set for anything that is not a well-formed record.
[[nodiscard]] std::optional<StoredToken> decode_record(std::string_view json, std::string& error);

/// A held token as a stored one: steady times mapped to wall time with `clock`.
[[nodiscard]] StoredToken to_stored(const CachedToken& t, std::string credential, std::string identity, const Clock& clock);
/// A stored token as one to hold: wall times mapped to steady time with `clock`. Its
/// refresh_at is left for CredentialState::adopt() to choose.
[[nodiscard]] CachedToken to_cached(const StoredToken& t, const Clock& clock);

} // namespace cltoken

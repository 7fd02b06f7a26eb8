#pragma once
// A customer session in two parts: the record (what the session *is*: whose, for which
// credential, its tokens and their times), which is all a store would need to seal and
// keep it so that a restart or another daemon of a fleet could carry on with it; and what
// only this daemon's memory knows (recent use, a refresh in flight, failures in a row),
// which starts afresh wherever the record is read back. Times are monotonic like
// CachedToken's: a store converts them to wall time (Clock::to_wall) when it writes.
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "core/clock.hpp"
#include "core/secret.hpp"

namespace cltoken {

struct SessionRecord {
  std::string credential;
  uid_t owner = static_cast<uid_t>(-1);
  Secret access_token;
  std::optional<Secret> refresh_token; ///< none for an adopted token without one
  std::string token_type = "bearer";
  std::string scope;
  std::string owner_id;
  SteadyTime obtained{}; ///< when the current access token was asked for
  SteadyTime expires_at{};
  SteadyTime refresh_at{}; ///< refresh point of the current token (RefreshPolicy)
  /// Bumped with every new token: of two copies of one session (a store's, a peer
  /// daemon's) the higher one holds the newer tokens.
  std::uint64_t generation = 1;
};

/// Everything a session holds here. Tokens are Secrets (wiped when dropped).
struct CustomerSession : SessionRecord {
  SteadyTime last_used{};  ///< created or last read: for idle eviction
  SteadyTime last_read{};  ///< last GET (epoch when never): "in use" when after `obtained`
  bool refreshing = false; ///< a refresh is in flight (single flight per session)
  unsigned failures = 0;   ///< refreshes failed in a row (backoff)
  bool unsaved = false;    ///< the store could not keep its last tokens: saved again when it can
};

} // namespace cltoken

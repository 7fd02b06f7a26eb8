#pragma once
// What a session store answers (store/session_store.hpp), as plain data the session core
// takes as events.
#include <optional>

#include "core/session_record.hpp"
#include "core/session_table.hpp"

namespace cltoken {

/// A session read back from a store, filed under its key.
struct KeptSession {
  SessionKey key;
  SessionRecord record;
};

/// A shared store's answer about a session this daemon does not hold.
struct SessionLookup {
  enum class Kind {
    found,       ///< `record`, owned by the local uid its owner's name maps to
    none,        ///< no such session (never was, ended, expired, or its owner has no uid here)
    unreachable, ///< the store could not say: the client is told to come back, not that it is gone
  };
  Kind kind = Kind::none;
  std::optional<SessionRecord> record;
};

/// What a shared store says before this daemon refreshes a session.
struct FleetRefresh {
  enum class Kind {
    go,    ///< refresh: this daemon holds the session's refresh lock, or the store cannot be reached
    newer, ///< another daemon refreshed it: `record` holds the newer tokens, use those
    ended, ///< it was ended (logged out) elsewhere: drop it
  };
  Kind kind = Kind::go;
  std::optional<SessionRecord> record;
};

/// What became of a save.
enum class SessionSaved {
  stored,      ///< kept (a shared store: and the refresh lock released)
  older,       ///< the store holds a newer generation already: kept as it was
  ended,       ///< it was ended elsewhere meanwhile: the tokens just obtained must be revoked
  unreachable, ///< not kept now; saved again when the store is reachable (on_available)
};

} // namespace cltoken

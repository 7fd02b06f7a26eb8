#pragma once
// Whose a stored session is, in words every host of a fleet reads alike: uids differ from
// host to host, user names are what an operator keeps the same. "user:NAME" for a uid
// with a name in the user database, else "uid:N" (which then means that uid everywhere).
// Looked up through NSS, so on the event loop: once per session written or read back,
// cached for the daemon's life.
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace cltoken {

/// The owner name of `uid`.
[[nodiscard]] std::string session_owner_name(uid_t uid);
/// The uid on this host of an owner name, or nullopt (no such user here, or not a name
/// session_owner_name() writes).
[[nodiscard]] std::optional<uid_t> session_owner_uid(std::string_view name);

} // namespace cltoken

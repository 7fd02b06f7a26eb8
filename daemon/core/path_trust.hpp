#pragma once
// Whether a file the daemon relies on (its socket, state file, config and
// secret files) could be replaced by another user, decided the way OpenSSH's
// StrictModes does: every folder from / down to the file, and the file itself,
// must belong to the daemon's user or root and be writable by nobody else. A
// folder with the sticky bit (/tmp) may be writable by all above the file's own
// folder: there nobody can rename or remove an entry they do not own, and the
// entry below it is checked in turn. A symbolic link is never the file itself.
// distrust() is the decision, on facts the caller gathered; check_path_trust()
// gathers them with lstat (file-system reads, like the config loader's).
#include <sys/types.h>

#include <optional>
#include <string>

namespace cltoken {

/// One entry on the way to a file, as lstat reported it.
struct PathStep {
  std::string path;
  uid_t owner = 0;
  mode_t mode = 0; ///< st_mode: type and permission bits
};

enum class PathRole {
  ancestor, ///< a folder above the file's own folder
  folder,   ///< the folder the file is in
  file,     ///< the file itself
};

/// What is wrong with `step` for `what` (say, "state file"), with the command
/// that fixes it; nullopt when it can be trusted. `daemon_uid`: the daemon's
/// effective uid.
[[nodiscard]] std::optional<std::string> distrust(const PathStep& step, PathRole role, uid_t daemon_uid, const std::string& what);

/// Checks every folder from / down to the folder of `path` (symbolic links
/// among them resolved first, so the folders checked are the real ones), then
/// `path` itself when `check_file` and it exists. The first sentence of
/// distrust(), or why a folder cannot be inspected; nullopt when all can be
/// trusted.
[[nodiscard]] std::optional<std::string> check_path_trust(const std::string& path, const std::string& what, bool check_file);

} // namespace cltoken

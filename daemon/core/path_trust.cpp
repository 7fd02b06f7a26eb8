#include "core/path_trust.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include <fmt/format.h>

namespace cltoken {

std::optional<std::string> distrust(const PathStep& step, PathRole role, uid_t daemon_uid, const std::string& what) {
  const std::string name = role == PathRole::file     ? fmt::format("{} {}", what, step.path)
                           : role == PathRole::folder ? fmt::format("{} folder {}", what, step.path)
                                                      : fmt::format("folder {} (above the {})", step.path, what);
  if (S_ISLNK(step.mode))
    return fmt::format("{} is a symbolic link; name the file itself, in a "
                       "folder only the daemon's user can write",
                       name);
  if (role != PathRole::file && !S_ISDIR(step.mode)) return fmt::format("{} is not a directory", name);
  if (step.owner != daemon_uid && step.owner != 0)
    return fmt::format("{} belongs to uid {}, not to the daemon (uid {}) or "
                       "root; run: chown {} {}",
                       name, step.owner, daemon_uid, daemon_uid, step.path);
  const bool others_write = (step.mode & 022) != 0;
  const bool sticky_above = role == PathRole::ancestor && (step.mode & S_ISVTX) != 0;
  if (others_write && !sticky_above)
    return fmt::format("{} can be written by group or others (mode {:04o}); "
                       "run: chmod go-w {}",
                       name, step.mode & 07777, step.path);
  return std::nullopt;
}

std::optional<std::string> check_path_trust(const std::string& path, const std::string& what, bool check_file) {
  const auto slash = path.rfind('/');
  const std::string folder = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(folder.c_str(), nullptr), &std::free);
  if (!real) return fmt::format("{} folder {}: {}", what, folder, std::strerror(errno));
  const std::string real_folder = real.get();
  const uid_t me = ::geteuid();
  // "/", "/a", "/a/b": each folder of the real path, from the root down.
  std::vector<std::string> steps{"/"};
  for (std::size_t pos = 1; real_folder != "/";) {
    const auto next = real_folder.find('/', pos);
    steps.push_back(real_folder.substr(0, next));
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  for (std::size_t i = 0; i < steps.size(); ++i) {
    struct stat st {};
    if (::lstat(steps[i].c_str(), &st) != 0)
      return fmt::format("{} folder {}: cannot inspect {}: {}", what, folder, steps[i], std::strerror(errno));
    const PathRole role = i + 1 == steps.size() ? PathRole::folder : PathRole::ancestor;
    if (auto why = distrust(PathStep{steps[i], st.st_uid, st.st_mode}, role, me, what)) return why;
  }
  if (!check_file) return std::nullopt;
  const std::string file = real_folder + (real_folder == "/" ? "" : "/") + base;
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    return fmt::format("{} {}: cannot inspect: {}", what, path, std::strerror(errno));
  }
  return distrust(PathStep{path, st.st_uid, st.st_mode}, PathRole::file, me, what);
}

} // namespace cltoken

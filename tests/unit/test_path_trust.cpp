// StrictModes decisions on lstat facts: owner, group/other write, sticky
// folders above, symbolic links.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "core/path_trust.hpp"

using namespace cltoken;

namespace {
constexpr uid_t daemon_uid = 990;
PathStep dir(std::string path, uid_t owner, mode_t bits) { return PathStep{std::move(path), owner, S_IFDIR | bits}; }
PathStep file(std::string path, uid_t owner, mode_t bits) { return PathStep{std::move(path), owner, S_IFREG | bits}; }
} // namespace

TEST_CASE("folders and files of the daemon's user or root, written by nobody "
          "else, are trusted") {
  CHECK_FALSE(distrust(dir("/", 0, 0755), PathRole::ancestor, daemon_uid, "state file"));
  CHECK_FALSE(distrust(dir("/var/lib/cl-tokend", daemon_uid, 0700), PathRole::folder, daemon_uid, "state file"));
  CHECK_FALSE(distrust(file("/var/lib/cl-tokend/state", daemon_uid, 0600), PathRole::file, daemon_uid, "state file"));
  // /tmp: writable by all, but sticky, above the file's own folder.
  CHECK_FALSE(distrust(dir("/tmp", 0, 01777), PathRole::ancestor, daemon_uid, "socket"));
}

TEST_CASE("another owner, write by others, a link, or a sticky own folder are not") {
  CHECK(*distrust(dir("/home/eve", 1000, 0755), PathRole::ancestor, daemon_uid, "socket") ==
        "folder /home/eve (above the socket) belongs to uid 1000, not to the "
        "daemon (uid 990) or root; run: chown 990 /home/eve");
  CHECK(*distrust(dir("/srv", 0, 0777), PathRole::ancestor, daemon_uid, "socket") ==
        "folder /srv (above the socket) can be written by group or others "
        "(mode 0777); run: chmod go-w /srv");
  CHECK(*distrust(dir("/tmp/x", 0, 01777), PathRole::folder, daemon_uid, "socket") ==
        "socket folder /tmp/x can be written by group "
        "or others (mode 1777); run: chmod go-w /tmp/x");
  CHECK(*distrust(file("/var/lib/s", daemon_uid, 0620), PathRole::file, daemon_uid, "state file") ==
        "state file /var/lib/s can be written by group or others (mode 0620); "
        "run: chmod go-w /var/lib/s");
  CHECK(distrust(PathStep{"/var/lib/s", daemon_uid, S_IFLNK | 0777}, PathRole::file, daemon_uid, "state file")
            ->find("symbolic link") != std::string::npos);
  CHECK(distrust(file("/var/lib", 0, 0755), PathRole::ancestor, daemon_uid, "state file")->find("not a directory") !=
        std::string::npos);
}

TEST_CASE("the walk checks the real folders from / down") {
  // Reads the file system only: "/" is root's; a missing folder cannot be
  // trusted.
  CHECK_FALSE(check_path_trust("/", "x", false));
  CHECK(check_path_trust("/nonexistent-folder/file", "state file", true)->find("No such file or directory") != std::string::npos);
}

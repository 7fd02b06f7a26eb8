#include "core/principal.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <vector>

namespace cltoken {

bool Principal::matches(const PeerIdentity& peer) const {
  switch (kind) {
  case Kind::any: return true;
  case Kind::uid: return peer.uid == id;
  case Kind::gid:
    return peer.gid == id || std::find(peer.groups.begin(), peer.groups.end(), static_cast<gid_t>(id)) != peer.groups.end();
  }
  return false;
}

bool allowed(const std::vector<Principal>& list, const PeerIdentity& peer) {
  return std::any_of(list.begin(), list.end(), [&](const Principal& p) { return p.matches(peer); });
}

namespace {
std::optional<unsigned> parse_id(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::size_t nss_buffer_size(int which) {
  long n = sysconf(which);
  return n > 0 ? static_cast<std::size_t>(n) : 16384;
}
} // namespace

std::optional<uid_t> SystemNameResolver::user(const std::string& name) const {
  std::vector<char> buf(nss_buffer_size(_SC_GETPW_R_SIZE_MAX));
  passwd pw{};
  passwd* result = nullptr;
  while (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &result) == ERANGE) buf.resize(buf.size() * 2);
  if (result == nullptr) return std::nullopt;
  return result->pw_uid;
}

std::optional<gid_t> SystemNameResolver::group(const std::string& name) const {
  std::vector<char> buf(nss_buffer_size(_SC_GETGR_R_SIZE_MAX));
  struct group gr{};
  struct group* result = nullptr;
  while (getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &result) == ERANGE) buf.resize(buf.size() * 2);
  if (result == nullptr) return std::nullopt;
  return result->gr_gid;
}

std::optional<Principal> parse_principal(std::string_view text, const NameResolver& names, std::string& error) {
  Principal p;
  p.text = std::string(text);
  if (text == "*") {
    p.kind = Principal::Kind::any;
    return p;
  }
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    error = "unknown principal \"" + std::string(text) + "\" (expected uid:N, gid:N, user:NAME, group:NAME or \"*\")";
    return std::nullopt;
  }
  auto type = text.substr(0, colon);
  auto value = text.substr(colon + 1);
  if (type == "uid" || type == "gid") {
    auto id = parse_id(value);
    if (!id) {
      error = "principal \"" + std::string(text) + "\": \"" + std::string(value) + "\" is not a number";
      return std::nullopt;
    }
    p.kind = type == "uid" ? Principal::Kind::uid : Principal::Kind::gid;
    p.id = *id;
    return p;
  }
  if (type == "user") {
    auto uid = names.user(std::string(value));
    if (!uid) {
      error = "principal \"" + std::string(text) + "\": no user named \"" + std::string(value) + "\" on this system";
      return std::nullopt;
    }
    p.kind = Principal::Kind::uid;
    p.id = *uid;
    return p;
  }
  if (type == "group") {
    auto gid = names.group(std::string(value));
    if (!gid) {
      error = "principal \"" + std::string(text) + "\": no group named \"" + std::string(value) + "\" on this system";
      return std::nullopt;
    }
    p.kind = Principal::Kind::gid;
    p.id = *gid;
    return p;
  }
  error = "unknown principal \"" + std::string(text) + "\" (expected uid:N, gid:N, user:NAME, group:NAME or \"*\")";
  return std::nullopt;
}

} // namespace cltoken

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
  case Kind::unit: return peer.unit && unit_glob_match(pattern, peer.unit->name);
  case Kind::slice:
    // Slices nest: a unit in shop-eu.slice under shop.slice is in both.
    return peer.unit && std::any_of(peer.unit->slices.begin(), peer.unit->slices.end(),
                                    [&](const std::string& s) { return unit_glob_match(pattern, s); });
  }
  return false;
}

bool allowed(const std::vector<Principal>& list, const PeerIdentity& peer) {
  return std::any_of(list.begin(), list.end(), [&](const Principal& p) { return p.matches(peer); });
}

namespace {
constexpr std::string_view expected_forms = "(expected uid:N, gid:N, user:NAME, group:NAME, unit:NAME, slice:NAME or \"*\")";

/// "unit:NAME" / "slice:NAME": a unit name in which `*` and `?` may stand for characters.
std::optional<std::string> unit_pattern_error(std::string_view type, std::string_view value) {
  std::string probe(value);
  for (char& c : probe)
    if (c == '*' || c == '?') c = 'x';
  const bool is_slice = probe.ends_with(".slice");
  // A glob that ends in `*` may stand for any type ("unit:*", "unit:cltok-*"); the
  // characters must still be a unit name's.
  const bool open_end = !value.empty() && value.back() == '*' && valid_unit_name(probe + ".service");
  if (type == "slice") {
    if (value == "-.slice") return "is the root slice, which holds every unit: use \"*\"";
    if (!open_end && (!is_slice || !valid_unit_name(probe))) return "is not a slice name (such as shop.slice or shop-*.slice)";
    return std::nullopt;
  }
  if (is_slice) return "names a slice: write slice:" + std::string(value);
  if (!open_end && !valid_unit_name(probe))
    return "is not a unit name with its type (such as storefront.service, export-*.service or session-*.scope)";
  return std::nullopt;
}

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
  struct group gr {};
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
    error = "unknown principal \"" + std::string(text) + "\" " + std::string(expected_forms);
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
  if (type == "unit" || type == "slice") {
    if (auto why = unit_pattern_error(type, value)) {
      error = "principal \"" + std::string(text) + "\": \"" + std::string(value) + "\" " + *why;
      return std::nullopt;
    }
    p.kind = type == "unit" ? Principal::Kind::unit : Principal::Kind::slice;
    p.pattern = std::string(value);
    return p;
  }
  error = "unknown principal \"" + std::string(text) + "\" " + std::string(expected_forms);
  return std::nullopt;
}

} // namespace cltoken

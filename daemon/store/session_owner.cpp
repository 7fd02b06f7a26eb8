#include "store/session_owner.hpp"

#include <pwd.h>
#include <unistd.h>

#include <charconv>
#include <map>
#include <vector>

namespace cltoken {

namespace {
constexpr std::string_view user_prefix = "user:";
constexpr std::string_view uid_prefix = "uid:";

std::vector<char> pw_buffer() {
  const long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  return std::vector<char>(hint > 0 ? static_cast<std::size_t>(hint) : 16384);
}
} // namespace

std::string session_owner_name(uid_t uid) {
  static std::map<uid_t, std::string> cache; // single-threaded: the event loop's
  if (auto it = cache.find(uid); it != cache.end()) return it->second;
  passwd pw{};
  passwd* found = nullptr;
  auto buf = pw_buffer();
  std::string name;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr && found->pw_name != nullptr &&
      found->pw_name[0] != '\0')
    name = std::string(user_prefix) + found->pw_name;
  else name = std::string(uid_prefix) + std::to_string(uid);
  return cache.emplace(uid, std::move(name)).first->second;
}

std::optional<uid_t> session_owner_uid(std::string_view name) {
  if (name.starts_with(uid_prefix)) {
    const std::string_view digits = name.substr(uid_prefix.size());
    unsigned long v = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() || v >= static_cast<uid_t>(-1))
      return std::nullopt;
    return static_cast<uid_t>(v);
  }
  if (!name.starts_with(user_prefix)) return std::nullopt;
  static std::map<std::string, std::optional<uid_t>, std::less<>> cache;
  if (auto it = cache.find(name); it != cache.end()) return it->second;
  const std::string user(name.substr(user_prefix.size()));
  passwd pw{};
  passwd* found = nullptr;
  auto buf = pw_buffer();
  std::optional<uid_t> uid;
  if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) uid = found->pw_uid;
  // Bounded: only names this daemon's own store holds reach here.
  if (cache.size() < 4096) cache.emplace(std::string(name), uid);
  return uid;
}

} // namespace cltoken

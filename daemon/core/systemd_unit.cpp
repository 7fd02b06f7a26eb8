#include "core/systemd_unit.hpp"

#include <array>

namespace cltoken {

namespace {

constexpr std::array unit_suffixes{".service", ".scope", ".socket", ".mount", ".swap", ".slice"};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool unit_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' || c == '_' || c == '.' ||
         c == '\\' || c == '@' || c == '-';
}

/// systemd writes a unit's cgroup name with a "_" in front when the plain name could be
/// taken for a kernel file ("cgroup.procs", "cpu.weight") or starts with "_" or "."
/// (cg_escape() in systemd's src/basic/cgroup-util.c); one "_" comes off again.
std::string_view unescape(std::string_view component) {
  if (!component.empty() && component.front() == '_') component.remove_prefix(1);
  return component;
}

} // namespace

bool valid_unit_name(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '.') return false;
  for (char c : name)
    if (!unit_char(c)) return false;
  for (std::string_view suffix : unit_suffixes)
    if (ends_with(name, suffix)) return true;
  return false;
}

std::optional<SystemdUnit> unit_of_cgroup_path(std::string_view path) {
  if (path.empty() || path.front() != '/') return std::nullopt;
  SystemdUnit unit;
  while (!path.empty()) {
    path.remove_prefix(1); // the '/'
    const auto slash = path.find('/');
    const std::string_view raw = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
    // ".." is how the kernel shows a cgroup outside the reader's namespace: whatever it
    // is, it is not one of the units this host's systemd (as we see it) manages.
    if (raw == ".." || raw == ".") return std::nullopt;
    const std::string_view name = unescape(raw);
    if (!valid_unit_name(name)) return std::nullopt;
    if (ends_with(name, ".slice")) {
      unit.slices.emplace_back(name);
      continue;
    }
    unit.name = std::string(name);
    return unit; // below here: the unit's own subtree, named by whoever runs in it
  }
  return std::nullopt; // the root cgroup, or a slice itself
}

std::optional<SystemdUnit> unit_of_proc_cgroup(std::string_view contents) {
  while (!contents.empty()) {
    const auto nl = contents.find('\n');
    const std::string_view line = contents.substr(0, nl);
    contents = nl == std::string_view::npos ? std::string_view{} : contents.substr(nl + 1);
    if (line.starts_with("0::")) return unit_of_cgroup_path(line.substr(3));
  }
  return std::nullopt;
}

bool unit_glob_match(std::string_view pattern, std::string_view name) {
  // Iterative wildcard matching with one backtrack point: linear in practice, never
  // exponential whatever the pattern.
  std::size_t p = 0, n = 0, star = std::string_view::npos, resume = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p;
      ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

} // namespace cltoken

#include "systemd/status_line.hpp"

#include <array>
#include <map>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace cltoken::systemd {

namespace {

// Worst first: an operator reading `systemctl status` sees what needs attention at once.
constexpr std::array order{CredentialStatus::failing,  CredentialStatus::expired, CredentialStatus::empty,
                           CredentialStatus::fetching, CredentialStatus::stale,   CredentialStatus::refreshing,
                           CredentialStatus::fresh};

// States in which clients get no token: name the credentials, they are what to look at.
bool names_them(CredentialStatus s) { return s == CredentialStatus::failing || s == CredentialStatus::expired; }

std::string label(const CredentialView& c) {
  if (c.state != CredentialStatus::failing) return c.name;
  // "rejected" needs a config or dashboard fix; anything else is retried with backoff.
  return c.name + (c.rejected ? " rejected" : " retrying");
}

} // namespace

std::string status_line(const StatusView& status, SteadyTime now, const std::string& note) {
  std::string out;
  const auto& creds = status.credentials;
  if (creds.empty()) {
    out = "no credentials configured";
  } else {
    std::map<CredentialStatus, std::vector<std::string>> by_state;
    for (const auto& c : creds) by_state[c.state].push_back(label(c));
    if (by_state.size() == 1 && !names_them(by_state.begin()->first)) {
      out = fmt::format("{}/{} credentials {}", creds.size(), creds.size(), to_string(by_state.begin()->first));
    } else {
      for (CredentialStatus s : order) {
        auto it = by_state.find(s);
        if (it == by_state.end()) continue;
        if (!out.empty()) out += "; ";
        out += fmt::format("{} {}", it->second.size(), to_string(s));
        if (names_them(s)) out += fmt::format(": {}", fmt::join(it->second, ", "));
      }
    }
  }
  if (status.rate_limited_until && *status.rate_limited_until > now) out += "; upstream rate limit hit, requests paused";
  if (!note.empty()) out += "; " + note;
  // STATUS= is one line: a newline would end the field and start a bogus one.
  for (char& ch : out)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return out;
}

} // namespace cltoken::systemd

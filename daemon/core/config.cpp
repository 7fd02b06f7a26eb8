#include "core/config.hpp"
#include "core/refresh_advice.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <toml++/toml.h>

#include "core/path_trust.hpp"
#include "core/secret_variables.hpp"

namespace cltoken {

const char* to_string(VerifyMode m) {
  switch (m) {
  case VerifyMode::required: return "required";
  case VerifyMode::when_available: return "when_available";
  case VerifyMode::off: return "off";
  }
  return "when_available";
}

const char* to_string(CredentialKind k) { return k == CredentialKind::integration ? "integration" : "sales_channel"; }

bool CredentialConfig::same_identity(const CredentialConfig& other) const {
  const bool secrets_equal = client_secret.has_value() == other.client_secret.has_value() &&
                             (!client_secret || client_secret->equals(*other.client_secret));
  return kind == other.kind && client_id == other.client_id && scope == other.scope && secrets_equal;
}

const CredentialConfig* Config::find(std::string_view name) const {
  for (const auto& c : credentials)
    if (c.name == name) return &c;
  return nullptr;
}

ConfigEnvironment system_config_environment() {
  static const SystemNameResolver resolver;
  ConfigEnvironment env;
  env.getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  env.secret_variable = take_secret_variable;
  env.names = &resolver;
  return env;
}

namespace {

bool is_loopback_host(const std::string& host) { return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0; }

} // namespace

std::optional<AuthUrl> parse_auth_url(const std::string& text, std::string& error) {
  AuthUrl url;
  std::string rest;
  if (text.rfind("https://", 0) == 0) {
    url.tls = true;
    rest = text.substr(8);
  } else if (text.rfind("http://", 0) == 0) {
    url.tls = false;
    rest = text.substr(7);
  } else {
    error = "auth_url \"" + text + "\" must start with https://";
    return std::nullopt;
  }
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  url.base_path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!url.base_path.empty() && url.base_path.back() == '/') url.base_path.pop_back();
  if (authority.find('@') != std::string::npos || url.base_path.find_first_of("?#") != std::string::npos) {
    error = "auth_url \"" + text + "\" must be a plain scheme://host[:port][/path]";
    return std::nullopt;
  }
  if (!authority.empty() && authority.front() == '[') { // [IPv6]:port
    auto close = authority.find(']');
    if (close == std::string::npos) {
      error = "auth_url \"" + text + "\" has an unclosed [IPv6] host";
      return std::nullopt;
    }
    url.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') url.port = authority.substr(close + 2);
  } else {
    auto colon = authority.rfind(':');
    url.host = authority.substr(0, colon);
    if (colon != std::string::npos) url.port = authority.substr(colon + 1);
  }
  if (url.host.empty()) {
    error = "auth_url \"" + text + "\" has no host";
    return std::nullopt;
  }
  if (url.port.empty()) url.port = url.tls ? "443" : "80";
  char* end = nullptr;
  long port = std::strtol(url.port.c_str(), &end, 10);
  if (*end != '\0' || port < 1 || port > 65535) {
    error = "auth_url \"" + text + "\" has an invalid port";
    return std::nullopt;
  }
  if (!url.tls && !is_loopback_host(url.host)) {
    error = "auth_url \"" + text + "\" uses plain http:// to a host that is not loopback; use https://";
    return std::nullopt;
  }
  url.text = text;
  while (!url.text.empty() && url.text.back() == '/') url.text.pop_back();
  return url;
}

std::string describe(const CredentialConfig& c) {
  std::string allow;
  for (const auto& p : c.allow) allow += (allow.empty() ? "" : ",") + p.text;
  return fmt::format("{}: {} client_id={} secret={} scope={} allow=[{}]", c.name, to_string(c.kind), c.client_id, c.secret_source,
                     c.scope.empty() ? "(none)" : c.scope, allow);
}

} // namespace cltoken

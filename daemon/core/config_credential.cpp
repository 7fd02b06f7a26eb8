// [credentials.NAME]: one credential, its secret source and its allow list.
#include "core/config_reader.hpp"

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

namespace cltoken::config_detail {

namespace {

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return name != "." && name != "..";
}

} // namespace

CredentialConfig load_credential(const std::string& file, const std::string& name, const toml::table& t,
                                 const ConfigEnvironment& env, bool config_private, std::vector<std::string>* units) {
  TableReader r(file, t, "credentials." + name);
  CredentialConfig c;
  c.name = name;
  c.line = r.line();
  if (!valid_name(name))
    r.fail_here("credential name \"" + name + "\" may contain only letters, digits, '-', '_' and '.' (at most 64)");
  auto kind = r.string("kind");
  if (!kind) r.fail_here("missing credentials." + name + ".kind (\"integration\" or \"sales_channel\")");
  if (*kind == "integration") c.kind = CredentialKind::integration;
  else if (*kind == "sales_channel") c.kind = CredentialKind::sales_channel;
  else
    r.fail_at(*t.get("kind"),
              "unknown credentials." + name + ".kind \"" + *kind + "\" (expected \"integration\" or \"sales_channel\")");
  c.client_id = r.required_string("client_id");
  c.scope = r.string("scope").value_or("");

  struct Source {
    const char* key;
    std::optional<std::string> value;
  };
  Source sources[] = {{"client_secret_file", r.string("client_secret_file")},
                      {"client_secret_env", r.string("client_secret_env")},
                      {"client_secret_credential", r.string("client_secret_credential")},
                      {"client_secret", r.string("client_secret")}};
  const Source* chosen = nullptr;
  for (const auto& s : sources) {
    if (!s.value) continue;
    if (chosen != nullptr)
      r.fail_at(*t.get(s.key), fmt::format("credentials.{}: both {} and {} are set; keep one", name, chosen->key, s.key));
    chosen = &s;
  }
  if (chosen != nullptr) {
    const std::string key = r.qualified(chosen->key);
    const unsigned line = line_of(*t.get(chosen->key));
    const std::string& v = *chosen->value;
    if (v.empty()) r.fail(line, key + " must not be empty");
    if (std::string_view(chosen->key) == "client_secret_file") {
      c.client_secret = read_secret_file(r, line, key, v);
      c.secret_source = "file " + v;
    } else if (std::string_view(chosen->key) == "client_secret_env") {
      auto value = env.secret_variable ? env.secret_variable(v) : env.getenv(v);
      if (!value || value->empty()) r.fail(line, fmt::format("{}: environment variable {} is not set or empty", key, v));
      c.client_secret = Secret(trim_trailing_newlines(*value));
      wipe(*value);
      c.secret_source = "env " + v;
    } else if (std::string_view(chosen->key) == "client_secret_credential") {
      auto dir = env.getenv("CREDENTIALS_DIRECTORY");
      if (!dir || dir->empty())
        r.fail(line, key + ": $CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the systemd unit)");
      if (v.find('/') != std::string::npos) r.fail(line, key + ": a credential name cannot contain '/'");
      if (v == "." || v == "..") r.fail(line, key + ": \"" + v + "\" is not a credential name");
      c.client_secret = read_secret_file(r, line, key, *dir + "/" + v, SecretFileRule::systemd_credential);
      c.secret_source = "credential " + v;
    } else {
      if (!config_private)
        r.fail(line, fmt::format("{}: an inline secret needs a config file that only its owner can read; run: chmod 600 {} "
                                 "(or use client_secret_file)",
                                 key, file));
      c.client_secret = Secret(v);
      c.secret_source = "inline";
      // The parsed table holds its own copy; it is ours (load_config's root), so wipe it.
      wipe(const_cast<std::string&>(t.get("client_secret")->as_string()->get()));
    }
  }
  for (auto& s : sources)
    if (s.value && std::string_view(s.key) == "client_secret") wipe(*s.value);
  if (c.kind == CredentialKind::integration && !c.client_secret)
    r.fail_here("credentials." + name +
                ": an integration needs a client secret "
                "(client_secret_file, client_secret_env, client_secret_credential or client_secret)");
  c.allow = principals(r, "allow", env, std::nullopt, units);
  r.reject_unknown();
  return c;
}

} // namespace cltoken::config_detail

// Fuzzes the config loader (load_config) with the bytes as the config file: any file an
// operator can write must load or fail with a ConfigError (file:line: what), never crash,
// hang, throw anything else, or put a secret in a message or in --check's summary.
//
// The harness works in a private folder of its own (its current directory), where the
// seeds' relative secret paths point: bo.secret (0600), open.secret (0644), a FIFO, and
// a systemd credentials folder.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/config.hpp"

using namespace cltoken;

namespace {

constexpr std::string_view file_secret = "fuzz-file-secret-value";
constexpr std::string_view env_secret = "fuzz-env-secret-value";
constexpr std::string_view credential_secret = "fuzz-credential-secret";

class TableResolver final : public NameResolver {
public:
  std::optional<uid_t> user(const std::string& name) const override {
    if (name == "erp") return 1001;
    if (name == "root") return 0;
    return std::nullopt;
  }
  std::optional<gid_t> group(const std::string& name) const override {
    if (name == "www-data") return 33;
    if (name == "cl-tokens" || name == "cl-integration") return 990;
    return std::nullopt;
  }
};

std::string folder;
TableResolver names;

void write(const std::string& name, std::string_view text, mode_t mode) {
  std::ofstream(folder + "/" + name) << text;
  ::chmod((folder + "/" + name).c_str(), mode);
}

[[noreturn]] void finding(const char* what, const std::string& text) {
  std::fprintf(stderr, "FINDING: %s\n%s\n", what, text.c_str());
  std::abort();
}

/// A secret the loader read from a source, in `text`. A value the config file spells out
/// itself (the fuzzer learns the strings) may be quoted back, like any other config text.
bool holds_secret(const std::string& text, std::string_view input) {
  for (auto s : {file_secret, env_secret, credential_secret})
    if (text.find(s) != std::string::npos && input.find(s) == std::string_view::npos) return true;
  return false;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char tmpl[] = "/tmp/cltoken-fuzz-config-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) std::abort();
  folder = tmpl;
  write("bo.secret", std::string(file_secret) + "\n", 0600);
  write("open.secret", "x", 0644);
  ::mkfifo((folder + "/fifo.secret").c_str(), 0600);
  ::mkdir((folder + "/credentials").c_str(), 0700);
  write("credentials/backoffice", credential_secret, 0400);
  write("ca.pem", "not really a CA", 0644);
  if (::chdir(folder.c_str()) != 0) std::abort(); // seeds name files relative to here
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(folder, ec);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (folder.empty()) LLVMFuzzerInitialize(nullptr, nullptr);
  const std::string path = folder + "/c.toml";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  // The first byte's low bit decides whether the file is private (inline secrets allowed).
  ::chmod(path.c_str(), size > 0 && (data[0] & 1) ? 0644 : 0600);
  ConfigEnvironment env;
  env.getenv = [](const std::string& name) -> std::optional<std::string> {
    if (name == "CREDENTIALS_DIRECTORY") return folder + "/credentials";
    if (name == "BO_SECRET") return std::string(env_secret);
    return std::nullopt;
  };
  env.names = &names;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  try {
    Config cfg = load_config(path, env);
    for (const auto& c : cfg.credentials) {
      if (holds_secret(describe(c), input)) finding("a secret in --check's summary", describe(c));
      if (c.kind == CredentialKind::integration && !c.client_secret) finding("an integration without a secret loaded", c.name);
      if (c.name.empty() || c.name.size() > 64) finding("a credential name out of bounds", c.name);
    }
    if (cfg.server.socket.empty() || cfg.server.socket.front() != '/' || cfg.server.socket.size() >= 108)
      finding("a socket path the listener cannot bind", cfg.server.socket);
    if ((cfg.server.socket_mode & 0600) != 0600 || cfg.server.socket_mode > 0777) finding("a bad socket mode", cfg.server.socket);
  } catch (const ConfigError& e) {
    if (holds_secret(e.what(), input)) finding("a secret in a config error", e.what());
  }
  return 0;
}

// [store]: the backends load with what they need, and refuse, with file and line, what
// would leave a token unprotected or a store unusable.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <catch2/catch.hpp>

#include "core/config.hpp"

using namespace cltoken;
namespace fs = std::filesystem;

namespace {

class NoNames final : public NameResolver {
public:
  std::optional<uid_t> user(const std::string&) const override { return std::nullopt; }
  std::optional<gid_t> group(const std::string&) const override { return std::nullopt; }
};

/// A folder with a config, a secret and a store key; removed at the end.
struct StoreScratch {
  fs::path dir;
  std::map<std::string, std::string> env;
  NoNames names;
  StoreScratch() {
    char tmpl[] = "/tmp/cltoken-store-XXXXXX";
    dir = ::mkdtemp(tmpl);
    put("it.secret", "integration-secret-value\n");
    put("store.key", "0123456789abcdef0123456789abcdef\n");
  }
  ~StoreScratch() { fs::remove_all(dir); }
  std::string put(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const fs::path p = dir / name;
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
    return p.string();
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
  /// Credentials: an integration with a secret file, and a sales channel without a secret.
  std::string credentials() const {
    return "[credentials.backoffice]\nkind = \"integration\"\nclient_id = \"it\"\nclient_secret_file = \"" + file("it.secret") +
           "\"\nallow = [\"*\"]\n[credentials.shop]\nkind = \"sales_channel\"\nclient_id = \"sc\"\nallow = [\"*\"]\n";
  }
  Config load(const std::string& store, mode_t mode = 0600) {
    ConfigEnvironment e;
    e.getenv = [this](const std::string& k) -> std::optional<std::string> {
      auto it = env.find(k);
      return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    e.names = &names;
    return load_config(put("c.toml", "[store]\n" + store + credentials(), mode), e);
  }
  std::string error(const std::string& store, mode_t mode = 0600) {
    try {
      load(store, mode);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  }
};

} // namespace

TEST_CASE("store: memory by default, and its other keys are ignored") {
  StoreScratch s;
  Config c = s.load("");
  CHECK(c.store.backend == "memory");
  CHECK_FALSE(c.store.key);
  CHECK_FALSE(c.store.redis);
  // A sales channel without a key is fine when nothing is stored.
  c = s.load("backend = \"memory\"\nkey_file = \"/nonexistent\"\nurl = \"not a url\"\n");
  CHECK_FALSE(c.store.key);
}

TEST_CASE("store: the file backend") {
  StoreScratch s;
  const std::string key = "key_file = \"" + s.file("store.key") + "\"\n";
  Config c = s.load("backend = \"file\"\npath = \"" + s.file("state") + "\"\n" + key);
  CHECK(c.store.backend == "file");
  CHECK(c.store.path == s.file("state"));
  REQUIRE(c.store.key);
  CHECK(c.store.key->reveal() == "0123456789abcdef0123456789abcdef");
  CHECK(c.store.key_source == "file " + s.file("store.key"));

  const std::string f = s.file("c.toml");
  CHECK(s.error("backend = \"file\"\npath = \"state\"\n" + key) ==
        f + ":3: store.path must be the absolute path of a file, such as \"/var/lib/cl-tokend/state\"");
  CHECK_THAT(s.error("backend = \"file\"\npath = \"/nonexistent-dir/state\"\n" + key),
             Catch::Contains(":3: store.path: folder /nonexistent-dir does not exist"));
  // The sales channel has no secret: without a store key its token could not be sealed.
  CHECK_THAT(s.error("backend = \"file\"\npath = \"" + s.file("state") + "\"\n"),
             Catch::Contains("credentials.shop has no client secret to seal its stored token with"));
  CHECK_THAT(s.error("backend = \"archive\"\n"), Catch::Contains(":2: store.backend must be"));
}

TEST_CASE("store: the generation anchor defaults to systemd's runtime folder") {
  StoreScratch s;
  const std::string file = "backend = \"file\"\npath = \"" + s.file("state") + "\"\nkey_file = \"" + s.file("store.key") + "\"\n";
  CHECK(s.load(file).store.generation_path.empty()); // not under systemd: not kept
  s.env["RUNTIME_DIRECTORY"] = "/run/cl-tokend:/run/other";
  CHECK(s.load(file).store.generation_path == "/run/cl-tokend/state.generation");
  CHECK(s.load(file + "generation_path = \"\"\n").store.generation_path.empty());
  CHECK(s.load(file + "generation_path = \"/srv/gen\"\n").store.generation_path == "/srv/gen");
  CHECK_THAT(s.error(file + "generation_path = \"relative\"\n"), Catch::Contains("store.generation_path must be"));
  CHECK_THAT(s.error(file + "generation_path = \"" + s.file("state") + "\"\n"), Catch::Contains("other than store.path"));
}

TEST_CASE("store: the key must be private, long enough, and from one source") {
  StoreScratch s;
  const std::string file = "backend = \"file\"\npath = \"" + s.file("state") + "\"\n";
  s.put("open.key", "0123456789abcdef0123456789abcdef", 0644);
  CHECK_THAT(s.error(file + "key_file = \"" + s.file("open.key") + "\"\n"), Catch::Contains("readable by group or others"));
  s.put("short.key", "too-short", 0600);
  CHECK_THAT(s.error(file + "key_file = \"" + s.file("short.key") + "\"\n"), Catch::Contains("at least 32 bytes"));
  CHECK_THAT(s.error(file + "key_file = \"" + s.file("store.key") + "\"\nkey_credential = \"k\"\n"),
             Catch::Contains("both key_file and key_credential"));
  CHECK_THAT(s.error(file + "key_credential = \"store.key\"\n"), Catch::Contains("$CREDENTIALS_DIRECTORY is not set"));
  s.env["CREDENTIALS_DIRECTORY"] = s.dir.string();
  Config c = s.load(file + "key_credential = \"store.key\"\n");
  REQUIRE(c.store.key);
  CHECK(c.store.key_source == "credential store.key");
}

TEST_CASE("store: the redis backend") {
  StoreScratch s;
  const std::string key = "key_file = \"" + s.file("store.key") + "\"\n";
  Config c = s.load("backend = \"redis\"\nurl = \"rediss://cache.internal:6380/2\"\ntimeout_ms = 250\npoll_ms = 50\n"
                    "reconnect_max_ms = 5000\nprefix = \"fleet-a\"\n" +
                    key);
  REQUIRE(c.store.redis);
  CHECK(c.store.redis->transport == RedisUrl::Transport::tls);
  CHECK(c.store.redis->db == 2);
  CHECK(c.store.timeout == Millis(250));
  CHECK(c.store.poll == Millis(50));
  CHECK(c.store.reconnect_max == Millis(5000));
  CHECK(c.store.prefix == "fleet-a");

  // Password from a file, or in the URL of a private config, never both.
  s.put("redis.pw", "pw-from-file\n");
  c = s.load("backend = \"redis\"\nurl = \"redis://127.0.0.1:6379/0\"\npassword_file = \"" + s.file("redis.pw") + "\"\n" + key);
  CHECK(c.store.redis->password->reveal() == "pw-from-file");
  c = s.load("backend = \"redis\"\nurl = \"redis://:pw-in-url@127.0.0.1:6379/0\"\n" + key);
  CHECK(c.store.redis->password->reveal() == "pw-in-url");
  const std::string f = s.file("c.toml");
  const std::string shared = s.error("backend = \"redis\"\nurl = \"redis://:pw-in-url@127.0.0.1:6379/0\"\n" + key, 0640);
  CHECK_THAT(shared, Catch::StartsWith(f + ":3: store.url holds a password"));
  CHECK(shared.find("pw-in-url") == std::string::npos);
  CHECK_THAT(s.error("backend = \"redis\"\nurl = \"redis://:x@h/0\"\npassword_file = \"" + s.file("redis.pw") + "\"\n" + key),
             Catch::Contains("both store.url and store.password_file"));

  CHECK(s.error("backend = \"redis\"\nurl = \"memcached://h\"\n" + key) ==
        f + ":3: store.url must start with redis://, rediss:// or unix://");
  CHECK_THAT(s.error("backend = \"redis\"\nca_file = \"/nonexistent.pem\"\n" + key),
             Catch::Contains("store.ca_file: cannot read"));
  CHECK_THAT(s.error("backend = \"redis\"\nprefix = \"a b\"\n" + key), Catch::Contains("store.prefix may contain only"));
  CHECK_THAT(s.error("backend = \"redis\"\ntimeout_ms = 5\n" + key), Catch::Contains("store.timeout_ms must be between"));
  CHECK_THAT(s.error("backend = \"redis\"\nurl_typo = \"x\"\n" + key), Catch::Contains("unknown key store.url_typo"));
}

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

class TableResolver final : public NameResolver {
public:
  std::optional<uid_t> user(const std::string& name) const override {
    if (name == "erp") return 1001;
    return std::nullopt;
  }
  std::optional<gid_t> group(const std::string& name) const override {
    if (name == "www-data") return 33;
    if (name == "cl-tokens") return 990;
    return std::nullopt;
  }
};

/// A scratch folder with config and secret files, removed at the end.
struct Scratch {
  fs::path dir;
  std::map<std::string, std::string> env;
  TableResolver names;
  Scratch() {
    char tmpl[] = "/tmp/cltoken-config-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~Scratch() { fs::remove_all(dir); }
  fs::path write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    fs::path p = dir / name;
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
    return p;
  }
  ConfigEnvironment environment() {
    ConfigEnvironment e;
    e.getenv = [this](const std::string& k) -> std::optional<std::string> {
      auto it = env.find(k);
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
    e.names = &names;
    return e;
  }
  Config load(const std::string& text, mode_t mode = 0600) { return load_config(write("c.toml", text, mode), environment()); }
  std::string error(const std::string& text, mode_t mode = 0600) {
    try {
      load(text, mode);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  }
};

const char* base = R"(
[upstream]
auth_url = "https://auth.commercelayer.io"
)";

} // namespace

TEST_CASE("a full config loads with every secret source") {
  Scratch s;
  s.write("bo.secret", "file-secret-value\n", 0600);
  s.write("cred-dir-secret", "credential-secret", 0400);
  s.env["BO_SECRET"] = "env-secret";
  s.env["CREDENTIALS_DIRECTORY"] = s.dir.string();
  auto cfg = s.load(std::string(base) + R"(
[server]
socket_mode = "0660"
socket_group = "cl-tokens"
admin = ["uid:0", "user:erp"]
[refresh]
at = 0.5
jitter = 0.1
min_ttl = 30
[credentials.a]
kind = "integration"
client_id = "id-a"
client_secret_file = ")" +
                    (s.dir / "bo.secret").string() + R"("
allow = ["user:erp", "group:www-data", "uid:1002", "gid:7", "*"]
[credentials.b]
kind = "integration"
client_id = "id-b"
client_secret_env = "BO_SECRET"
allow = ["uid:0"]
[credentials.c]
kind = "integration"
client_id = "id-c"
client_secret_credential = "cred-dir-secret"
allow = ["uid:0"]
[credentials.d]
kind = "sales_channel"
client_id = "id-d"
scope = "market:code:europe"
allow = ["group:www-data"]
[credentials.e]
kind = "integration"
client_id = "id-e"
client_secret = "inline-secret"
allow = ["uid:0"]
)");
  REQUIRE(cfg.credentials.size() == 5);
  CHECK(cfg.find("a")->client_secret->reveal() == "file-secret-value");
  CHECK(cfg.find("b")->client_secret->reveal() == "env-secret");
  CHECK(cfg.find("c")->client_secret->reveal() == "credential-secret");
  CHECK_FALSE(cfg.find("d")->client_secret);
  CHECK(cfg.find("e")->client_secret->reveal() == "inline-secret");
  CHECK(cfg.find("a")->allow.size() == 5);
  CHECK(cfg.server.socket_group == 990u);
  CHECK(cfg.server.admin.size() == 2);
  CHECK(cfg.refresh.at == 0.5);
  CHECK(cfg.refresh.min_ttl == Seconds(30));
  CHECK(cfg.refresh.reissue_window == Seconds(900)); // Commerce Layer's, by default
  // at = 0.5 cannot be honoured by an upstream that reissues only in the last 900 s.
  REQUIRE(cfg.warnings.size() == 1);
  CHECK_THAT(cfg.warnings[0], Catch::StartsWith((s.dir / "c.toml").string() + ":") && Catch::Contains(": refresh.at = 0.5 asks"));
  // --check's summary names the source, never the value
  CHECK(describe(*cfg.find("a")).find("file-secret-value") == std::string::npos);
  CHECK_THAT(describe(*cfg.find("b")), Catch::Contains("secret=env BO_SECRET"));
}

TEST_CASE("every bad config names the file, the line and what is wrong") {
  Scratch s;
  const std::string file = (s.dir / "c.toml").string();
  SECTION("missing field") {
    CHECK(s.error("[credentials.x]\nkind = \"sales_channel\"\nallow = [\"*\"]\n") ==
          file + ":1: missing credentials.x.client_id");
  }
  SECTION("unknown kind") {
    CHECK(s.error("[credentials.x]\nkind = \"robot\"\nclient_id = \"a\"\nallow = [\"*\"]\n") ==
          file + ":2: unknown credentials.x.kind \"robot\" (expected \"integration\" or \"sales_channel\")");
  }
  SECTION("plain http to a host that is not loopback") {
    CHECK(s.error("[upstream]\nauth_url = \"http://auth.commercelayer.io\"\n") ==
          file + ":2: upstream.auth_url \"http://auth.commercelayer.io\" uses plain http:// to a host that is not loopback; use "
                 "https://");
    CHECK_NOTHROW(s.load("[upstream]\nauth_url = \"http://127.0.0.1:8080\"\n"));
  }
  SECTION("inline secret in a file others can read") {
    CHECK_THAT(
        s.error("[credentials.x]\nkind = \"integration\"\nclient_id = \"a\"\nclient_secret = \"s\"\nallow = [\"*\"]\n", 0644),
        Catch::StartsWith(file +
                          ":4: credentials.x.client_secret: an inline secret needs a config file that only its owner can read; "
                          "run: chmod 600 " +
                          file));
  }
  SECTION("secret file readable by others") {
    auto secret = s.write("open.secret", "x", 0640);
    CHECK_THAT(s.error("[credentials.x]\nkind = \"integration\"\nclient_id = \"a\"\nclient_secret_file = \"" + secret.string() +
                       "\"\nallow = [\"*\"]\n"),
               Catch::EndsWith("is readable by group or others (mode 0640); run: chmod 600 " + secret.string()));
  }
  SECTION("missing secret file") {
    CHECK_THAT(s.error("[credentials.x]\nkind = \"integration\"\nclient_id = \"a\"\nclient_secret_file = "
                       "\"/nonexistent/x\"\nallow = [\"*\"]\n"),
               Catch::StartsWith(file + ":4: credentials.x.client_secret_file: cannot open /nonexistent/x: No such file"));
  }
  SECTION("unknown principal") {
    CHECK(
        s.error("[credentials.x]\nkind = \"sales_channel\"\nclient_id = \"a\"\nallow = [\n  \"*\",\n  \"user:nobody-here\"]\n") ==
        file + ":6: credentials.x.allow: principal \"user:nobody-here\": no user named \"nobody-here\" on this system");
    CHECK_THAT(s.error("[credentials.x]\nkind = \"sales_channel\"\nclient_id = \"a\"\nallow = [\"root\"]\n"),
               Catch::Contains("unknown principal \"root\""));
  }
  SECTION("broken TOML") { CHECK_THAT(s.error("[server\nsocket = 1\n"), Catch::StartsWith(file + ":1: ")); }
  SECTION("a typo in a key") { CHECK(s.error("[refresh]\nat = 0.5\njiter = 0.1\n") == file + ":3: unknown key refresh.jiter"); }
  SECTION("integration without a secret") {
    CHECK_THAT(s.error("[credentials.x]\nkind = \"integration\"\nclient_id = \"a\"\nallow = [\"*\"]\n"),
               Catch::Contains("an integration needs a client secret"));
  }
  SECTION("two secret sources") {
    s.env["S"] = "v";
    CHECK_THAT(s.error("[credentials.x]\nkind = \"integration\"\nclient_id = \"a\"\nclient_secret_env = \"S\"\nclient_secret = "
                       "\"v\"\nallow = [\"*\"]\n"),
               Catch::Contains("keep one"));
  }
  SECTION("out of range") {
    CHECK(s.error("[upstream]\nmax_requests_per_minute = 0\n") ==
          file + ":2: upstream.max_requests_per_minute must be between 1 and 100000, not 0");
  }
  SECTION("token verification settings and their defaults") {
    const Config d = s.load("[upstream]\nauth_url = \"https://auth.example.test\"\n");
    CHECK(d.upstream.verify == VerifyMode::when_available);
    CHECK(d.upstream.issuer == "https://auth.example.test");
    CHECK(d.upstream.jwks_min_interval == Seconds(30));
    CHECK(d.upstream.verify_skew == Seconds(60));
    CHECK(d.upstream.jwks_max_age == Seconds(86400));
    REQUIRE(d.server.verify_allow.size() == 1);
    CHECK(d.server.metrics_allow.empty()); // admins only
    CHECK(s.load("[server]\nmetrics_allow = [\"uid:65534\"]\n").server.metrics_allow.size() == 1);
    CHECK(s.load("[upstream]\njwks_max_age_s = 3600\n").upstream.jwks_max_age == Seconds(3600));
    CHECK(s.error("[upstream]\njwks_max_age_s = 4\n") ==
          file + ":2: upstream.jwks_max_age_s must be between 5 and 2592000, not 4");
    const Config c = s.load("[upstream]\nverify = \"required\"\nissuer = \"https://iss.example\"\njwks_min_interval_s = 5\n"
                            "verify_skew_s = 0\n");
    CHECK(c.upstream.verify == VerifyMode::required);
    CHECK(c.upstream.issuer == "https://iss.example");
    CHECK(c.upstream.jwks_min_interval == Seconds(5));
    CHECK(c.upstream.verify_skew == Seconds(0));
    CHECK(s.load("[upstream]\nverify = \"off\"\n").upstream.verify == VerifyMode::off);
    CHECK(s.error("[upstream]\nverify = \"sometimes\"\n") ==
          file + ":2: upstream.verify must be \"required\", \"when_available\" or \"off\"");
    CHECK(s.error("[upstream]\njwks_min_interval_s = 0\n") ==
          file + ":2: upstream.jwks_min_interval_s must be between 1 and 86400, not 0");
  }
  SECTION("reissue window out of range, and 0 allowed") {
    CHECK(s.error("[refresh]\nreissue_window_s = -1\n") ==
          file + ":2: refresh.reissue_window_s must be between 0 and 86400, not -1");
    CHECK(s.load("[refresh]\nreissue_window_s = 0\n").refresh.reissue_window == Seconds(0));
  }
  SECTION("missing allow") {
    CHECK_THAT(s.error("[credentials.x]\nkind = \"sales_channel\"\nclient_id = \"a\"\n"),
               Catch::Contains("missing credentials.x.allow"));
  }
}

TEST_CASE("identity decides which tokens survive a reload") {
  CredentialConfig a;
  a.client_id = "id";
  a.client_secret = Secret("s");
  a.scope = "market:all";
  CredentialConfig b = a;
  b.allow.push_back(Principal{Principal::Kind::uid, 5, "uid:5", {}});
  CHECK(a.same_identity(b));
  b.client_secret = Secret("t");
  CHECK_FALSE(a.same_identity(b));
  b = a;
  b.scope = "market:code:eu";
  CHECK_FALSE(a.same_identity(b));
}

TEST_CASE("secret sources are refused unless only the daemon can read and change them") {
  Scratch s;
  const std::string file = (s.dir / "c.toml").string();
  auto cred = [&](const std::string& key, const std::string& value) {
    return "[credentials.x]\nkind = \"integration\"\nclient_id = \"a\"\n" + key + " = \"" + value + "\"\nallow = [\"*\"]\n";
  };
  SECTION("group-writable secret file: someone else could replace the secret") {
    auto secret = s.write("w.secret", "x", 0620);
    CHECK(s.error(cred("client_secret_file", secret.string())) ==
          file + ":4: credentials.x.client_secret_file: " + secret.string() +
              " is writable by group or others (mode 0620); run: chmod 600 " + secret.string());
  }
  SECTION("world-readable secret file") {
    auto secret = s.write("r.secret", "x", 0604);
    CHECK_THAT(s.error(cred("client_secret_file", secret.string())),
               Catch::EndsWith("is readable by group or others (mode 0604); run: chmod 600 " + secret.string()));
  }
  SECTION("0400 is fine") {
    auto secret = s.write("ro.secret", "read-only-secret\n", 0400);
    CHECK(s.load(cred("client_secret_file", secret.string())).find("x")->client_secret->reveal() == "read-only-secret");
  }
  SECTION("a FIFO is refused at once instead of hanging the load") {
    const auto fifo = s.dir / "fifo.secret";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THAT(s.error(cred("client_secret_file", fifo.string())), Catch::EndsWith(fifo.string() + " is not a regular file"));
  }
  SECTION("a device is refused") {
    CHECK_THAT(s.error(cred("client_secret_file", "/dev/zero")), Catch::EndsWith("/dev/zero is not a regular file"));
  }
  SECTION("systemd credentials: group bits are systemd's ACL mask, others are refused") {
    s.env["CREDENTIALS_DIRECTORY"] = s.dir.string();
    s.write("acl-cred", "from-systemd", 0440);
    CHECK(s.load(cred("client_secret_credential", "acl-cred")).find("x")->client_secret->reveal() == "from-systemd");
    auto open = s.write("open-cred", "x", 0444);
    CHECK(s.error(cred("client_secret_credential", "open-cred")) ==
          file + ":4: credentials.x.client_secret_credential: " + open.string() +
              " is readable by others (mode 0444); run: chmod o= " + open.string());
    CHECK_THAT(s.error(cred("client_secret_credential", "..")), Catch::Contains("is not a credential name"));
    CHECK_THAT(s.error(cred("client_secret_credential", "a/b")), Catch::Contains("cannot contain '/'"));
  }
  SECTION("systemd credentials need $CREDENTIALS_DIRECTORY") {
    CHECK_THAT(s.error(cred("client_secret_credential", "c")), Catch::Contains("$CREDENTIALS_DIRECTORY is not set"));
  }
  SECTION("the secret value never appears in an error") {
    auto secret = s.write("big.secret", std::string(5000, 'k'), 0600);
    const std::string e = s.error(cred("client_secret_file", secret.string()));
    CHECK_THAT(e, Catch::Contains("larger than 4 KiB"));
    CHECK(e.find("kkkkkkkk") == std::string::npos);
  }
}

TEST_CASE("a config file others could change is refused, as is one in a folder they can write") {
  Scratch s;
  const std::string file = (s.dir / "c.toml").string();
  CHECK(s.error("", 0620) ==
        file + ":0: config file " + file + " can be written by group or others (mode 0620); run: chmod go-w " + file);
  ::chmod(s.dir.c_str(), 0777);
  CHECK(s.error("") == file + ":0: config file folder " + s.dir.string() +
                           " can be written by group or others (mode 0777); run: chmod go-w " + s.dir.string());
  ::chmod(s.dir.c_str(), 0700);
  CHECK_NOTHROW(s.load(""));
}

TEST_CASE("customer session limits load with their ranges") {
  Scratch s;
  const std::string file = (s.dir / "c.toml").string();
  const auto defaults = s.load("").customers;
  CHECK(defaults.max_sessions == 100000);
  CHECK(defaults.max_sessions_per_peer == 50000);
  CHECK(defaults.max_memory_mib == 192);
  CHECK(defaults.login_burst == 10);
  CHECK(defaults.login_interval == Millis(2000));
  const auto set = s.load("[customers]\nmax_sessions_per_peer = 10\nmax_memory_mib = 16\nlogin_burst = 1000\n"
                          "login_interval_ms = 50\n")
                       .customers;
  CHECK(set.max_sessions_per_peer == 10);
  CHECK(set.max_memory_mib == 16);
  CHECK(set.login_burst == 1000);
  CHECK(set.login_interval == Millis(50));
  CHECK(s.error("[customers]\nlogin_burst = 0\n") == file + ":2: customers.login_burst must be between 1 and 1000000, not 0");
  CHECK(s.error("[customers]\nlogin_interval_ms = 0\n") ==
        file + ":2: customers.login_interval_ms must be between 1 and 3600000, not 0");
}

TEST_CASE("server limits load with their ranges") {
  Scratch s;
  const std::string file = (s.dir / "c.toml").string();
  auto cfg = s.load("[server]\nmax_connections = 64\nmax_requests_per_peer = 8\nmax_header_bytes = 4096\n"
                    "max_body_bytes = 2048\nrequest_timeout_ms = 500\nidle_timeout_ms = 1000\n");
  CHECK(cfg.server.max_connections == 64);
  CHECK(cfg.server.max_requests_per_peer == 8);
  CHECK(cfg.server.max_header_bytes == 4096);
  CHECK(cfg.server.max_body_bytes == 2048);
  CHECK(cfg.server.request_timeout == Millis(500));
  CHECK(cfg.server.idle_timeout == Millis(1000));
  CHECK(s.load("").server.max_requests_per_peer == 0); // default: no per-peer cap
  CHECK(s.error("[server]\nmax_requests_per_peer = -1\n") ==
        file + ":2: server.max_requests_per_peer must be between 0 and 1000000, not -1");
  CHECK(s.load("").server.max_connections_per_peer == 128);
  CHECK(s.load("").server.invalidate_burst == 5);
  CHECK(s.load("").server.invalidate_interval == Millis(12000));
  auto inv = s.load("[server]\ninvalidate_burst = 2\ninvalidate_interval_ms = 500\n");
  CHECK((inv.server.invalidate_burst == 2 && inv.server.invalidate_interval == Millis(500)));
  CHECK(s.error("[server]\ninvalidate_burst = 0\n") == file + ":2: server.invalidate_burst must be between 1 and 1000000, not 0");
  CHECK(s.load("").server.admin_reserved_connections == 8);
  CHECK(s.load("[server]\nmax_connections = 8\n").server.admin_reserved_connections == 2); // default: at most a quarter
  auto fair = s.load("[server]\nmax_connections = 32\nmax_connections_per_peer = 0\nadmin_reserved_connections = 31\n");
  CHECK(fair.server.max_connections_per_peer == 0);
  CHECK(fair.server.admin_reserved_connections == 31);
  CHECK(s.error("[server]\nmax_connections = 32\nadmin_reserved_connections = 32\n") ==
        file + ":3: server.admin_reserved_connections (32) must be smaller than server.max_connections (32), or no peer "
               "but an admin could connect");
  CHECK(s.error("[server]\nmax_connections_per_peer = -1\n") ==
        file + ":2: server.max_connections_per_peer must be between 0 and 1000000, not -1");
  CHECK(s.error("[server]\nmax_header_bytes = 100\n") ==
        file + ":2: server.max_header_bytes must be between 1024 and 1048576, not 100");
  CHECK(s.error("[server]\nsocket_mode = \"0066\"\n") ==
        file + ":2: server.socket_mode must let the owner read and write (0600 at least)");
}

TEST_CASE("unit and slice principals load, and each is remembered with its line for --check") {
  Scratch s;
  const std::string file = (s.dir / "c.toml").string();
  auto cfg = s.load(std::string(base) + "[server]\nadmin = [\"uid:0\", \"unit:ops-*.service\"]\n"
                                        "[credentials.x]\nkind = \"sales_channel\"\nclient_id = \"a\"\n"
                                        "allow = [\"uid:0\",\n  \"unit:storefront.service\",\n  \"slice:shop.slice\"]\n");
  REQUIRE(cfg.credentials.size() == 1);
  CHECK(cfg.credentials[0].allow.size() == 3);
  CHECK(cfg.unit_principals == std::vector<std::string>{file + ":5: server.admin names unit:ops-*.service",
                                                        file + ":10: credentials.x.allow names unit:storefront.service",
                                                        file + ":11: credentials.x.allow names slice:shop.slice"});
  CHECK(s.load(std::string(base)).unit_principals.empty());
  CHECK(s.error("[credentials.x]\nkind = \"sales_channel\"\nclient_id = \"a\"\nallow = [\"unit:storefront\"]\n") ==
        file + ":4: credentials.x.allow: principal \"unit:storefront\": \"storefront\" is not a unit name with its type "
               "(such as storefront.service, export-*.service or session-*.scope)");
}

TEST_CASE("[log] access and its rate") {
  Scratch s;
  const std::string file = (s.dir / "c.toml").string();
  auto off = s.load(std::string(base));
  CHECK_FALSE(off.log.access);
  CHECK(off.log.access_per_minute == 600);
  auto on = s.load(std::string(base) + "[log]\naccess = true\naccess_per_minute = 60\n");
  CHECK(on.log.access);
  CHECK(on.log.access_per_minute == 60);
  CHECK(s.error("[log]\naccess = \"yes\"\n") == file + ":2: log.access must be true or false");
  CHECK(s.error("[log]\naccess_per_minute = 0\n") == file + ":2: log.access_per_minute must be between 1 and 1000000, not 0");
}

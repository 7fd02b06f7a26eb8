#pragma once
// The daemon's configuration: a TOML file, validated
// completely at load so that a running daemon never meets a bad value. Every error
// carries the file and line it comes from.
#include <sys/types.h>

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/principal.hpp"
#include "core/secret.hpp"
#include "core/store_url.hpp"

namespace cltoken {

/// "file:line: what is wrong" — what `cl-tokend --check` prints after "cl-tokend: ".
class ConfigError : public std::runtime_error {
public:
  ConfigError(std::string file, unsigned line, const std::string& what)
      : std::runtime_error(file + ":" + std::to_string(line) + ": " + what), file_(std::move(file)), line_(line) {}
  [[nodiscard]] const std::string& file() const { return file_; }
  [[nodiscard]] unsigned line() const { return line_; }

private:
  std::string file_;
  unsigned line_;
};

enum class CredentialKind { integration, sales_channel };
[[nodiscard]] const char* to_string(CredentialKind k);

/// Where the auth server is: scheme, host and port split out for the client.
struct AuthUrl {
  std::string text; ///< as configured, without a trailing slash
  bool tls = true;
  std::string host;
  std::string port;
  std::string base_path; ///< "" or "/prefix" (no trailing slash)
};

struct ServerConfig {
  std::string socket = "/run/cl-tokend/cl-tokend.sock";
  mode_t socket_mode = 0660;
  std::optional<gid_t> socket_group;
  std::string socket_group_name;
  std::vector<Principal> admin;
  std::vector<Principal> verify_allow;  ///< who may POST /v1/verify (default: any peer)
  std::vector<Principal> metrics_allow; ///< besides admins, who gets per-credential counters in /metrics (default: nobody)
  std::size_t max_connections = 256;
  std::size_t max_connections_per_peer = 128; ///< open connections per uid; 0 = no cap
  std::size_t admin_reserved_connections = 8; ///< of max_connections, for admin principals only
  std::size_t max_requests_per_peer = 0;      ///< requests in progress per uid; 0 = no cap
  unsigned invalidate_burst = 5;              ///< reports of a current token per uid at once ...
  Millis invalidate_interval{12000};          ///< ... then one per interval (admins: no limit)
  Millis idle_timeout{30000};
  Millis request_timeout{15000}; ///< whole request: read, wait for a token, write
  std::size_t max_header_bytes = 8192;
  std::size_t max_body_bytes = 65536;
};

/// What happens to a token that cannot be checked because the auth server's keys cannot be
/// had (docs/security.md, "Token verification").
enum class VerifyMode {
  required,       ///< no keys, no token: nothing is served that was not verified
  when_available, ///< no keys yet: claims are checked, the signature once keys arrive
  off,            ///< tokens are served as the auth server sends them
};
/// The config spelling: "required", "when_available", "off".
[[nodiscard]] const char* to_string(VerifyMode m);

struct UpstreamConfig {
  AuthUrl auth_url;
  std::string ca_file;
  Millis connect_timeout{5000};
  Millis request_timeout{10000};
  unsigned max_requests_per_minute = 25;
  VerifyMode verify = VerifyMode::when_available;
  std::string issuer;            ///< the `iss` tokens must carry; default: auth_url
  Seconds jwks_min_interval{30}; ///< no two key-set requests closer than this
  Seconds jwks_max_age{86400};   ///< a key set kept in the store longer than this is fetched again
  Seconds verify_skew{60};       ///< tolerance between a token's exp and expires_in
  /// Where the budget's record of recent requests survives a restart; "" = not kept.
  std::string budget_path;
  unsigned budget_path_line = 0;
};

struct RefreshConfig {
  double at = 0.75;
  double jitter = 0.05;
  Seconds min_ttl{60};
  /// The auth server answers with the current client-credentials token until it has this
  /// long left (Commerce Layer: 900 s); 0 = a new token on every request.
  Seconds reissue_window{900};
  Millis backoff_initial{1000};
  Millis backoff_max{300000};
};

struct LogConfig {
  std::string level = "info";
  std::string format = "text";
  bool access = false;              ///< one line per token handed out or refused (core/access_log.hpp)
  unsigned access_per_minute = 600; ///< access lines a minute, all peers; a tenth of it per uid
};

struct CredentialConfig {
  std::string name;
  CredentialKind kind = CredentialKind::integration;
  std::string client_id;
  std::optional<Secret> client_secret;
  std::string secret_source = "none"; ///< "file PATH", "env NAME", "credential NAME", "inline" or "none"
  std::string scope;                  ///< empty = none requested
  std::vector<Principal> allow;
  unsigned line = 0;

  /// Same upstream identity: a token obtained for one is valid for the other.
  [[nodiscard]] bool same_identity(const CredentialConfig& other) const;
};

struct CustomersConfig {
  std::size_t max_sessions = 100000;
  std::size_t max_sessions_per_peer = 50000; ///< 0: only max_sessions
  std::size_t max_memory_mib = 192;          ///< all sessions' bytes (session_bytes); 0: no bound
  unsigned login_burst = 10;                 ///< new sessions per uid at once (logins and adopts) ...
  Millis login_interval{2000};               ///< ... then one per interval
  Seconds idle_timeout{1209600};
  /// Keep sessions in the store when store.backend is "file" or "redis" (docs/customer-sessions.md).
  bool store = true;
  /// How long the auth server keeps a refresh token valid: a stored session expires then
  /// (Commerce Layer: 2 weeks).
  Seconds refresh_token_lifetime{1209600};
};

/// [store]: where tokens survive a restart and how a fleet shares them (docs/store.md).
struct StoreConfig {
  std::string backend = "memory"; ///< memory | file | redis
  std::string path = "/var/lib/cl-tokend/state";
  /// file: where the count of saves and removals per credential is kept, so that a rolled
  /// back state file is refused (docs/store.md); "" = not kept. Default
  /// $RUNTIME_DIRECTORY/state.generation under systemd, else "".
  std::string generation_path;
  /// file: the customer sessions' journal (docs/store.md). Default: "sessions" beside store.path.
  std::string sessions_path;
  std::string key_file;
  std::string key_credential;
  std::string key_source = "none"; ///< "file PATH", "credential NAME" or "none", for --check
  std::optional<Secret> key;       ///< seals the records of credentials without a client secret
  std::string url = "redis://127.0.0.1:6379/0";
  std::optional<RedisUrl> redis; ///< url parsed (backend redis), password from the url or password_file
  std::string password_file;
  std::string ca_file;         ///< rediss://: PEM CAs; empty = the system trust store
  Millis timeout{1000};        ///< each Redis operation, connecting included
  Millis poll{200};            ///< how often a daemon waiting on another's fetch looks for its token
  Millis reconnect_max{30000}; ///< longest pause between reconnection attempts
  /// redis: how often a daemon looks for sessions ended (logged out) on other daemons: the
  /// longest it serves a session after a logout elsewhere, Redis reachable.
  Millis session_poll{1000};
  std::string prefix = "cl-tokend"; ///< of every Redis key, so fleets can share one Redis
};

struct Config {
  std::string path;
  ServerConfig server;
  UpstreamConfig upstream;
  RefreshConfig refresh;
  LogConfig log;
  std::vector<CredentialConfig> credentials;
  CustomersConfig customers;
  StoreConfig store;
  /// "FILE:LINE: text" for settings that load but will not do what they say: printed by
  /// --check, logged at start and reload.
  std::vector<std::string> warnings;
  /// "FILE:LINE: KEY names PRINCIPAL" for every unit and slice principal: they match only
  /// where the peer's unit can be read, which --check and the start-up verify on the host.
  std::vector<std::string> unit_principals;

  [[nodiscard]] const CredentialConfig* find(std::string_view name) const;
};

/// What the loader may ask of the outside world, injected so tests control it.
struct ConfigEnvironment {
  std::function<std::optional<std::string>(const std::string&)> getenv;
  /// Reads a variable named by client_secret_env; getenv when unset.
  std::function<std::optional<std::string>(const std::string&)> secret_variable;
  const NameResolver* names = nullptr;
};

/// The real environment: getenv() and the system user database.
ConfigEnvironment system_config_environment();

/// Loads and validates a config file. Throws ConfigError.
Config load_config(const std::string& path, const ConfigEnvironment& env);

/// Parses an auth URL; http:// is accepted only for a loopback host. Empty optional and
/// `error` set when it is not acceptable.
std::optional<AuthUrl> parse_auth_url(const std::string& text, std::string& error);

/// One line per credential for `--check`: never a secret.
std::string describe(const CredentialConfig& c);

} // namespace cltoken

// cl-tokend: wires the pieces together in order and tears them down in reverse.
// main owns the io_context; everything else gets an executor. Teardown: SIGTERM cancels
// what waits (listener, scheduler, sessions, heartbeat, signals); then every coroutine still
// suspended is destroyed while the objects it refers to exist (Context::finish), then those
// objects in the reverse of their construction, then the context itself.
#include <sys/prctl.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include "async/clock_timer.hpp"
#include "async/context.hpp"
#include "async/spawn.hpp"
#include "broker/broker.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "server/handler.hpp"
#include "server/listener.hpp"
#include "server/peer_unit.hpp"
#include "store/budget_file.hpp"
#include "store/key_set_keeper.hpp"
#include "store/make_store.hpp"
#include "systemd/heartbeat.hpp"
#include "systemd/notify.hpp"
#include "systemd/watchdog.hpp"
#include "upstream/auth_client.hpp"
#include "upstream/metered_upstream.hpp"
#include "upstream/signing_keys.hpp"
#include "upstream/swappable_upstream.hpp"
#include "upstream/token_verifier.hpp"
#include "upstream/verifying_upstream.hpp"

namespace asio = boost::asio;
using namespace cltoken;

namespace {

/// SIGTERM to exit: in-flight requests get this long...
constexpr auto shutdown_grace = std::chrono::seconds(5);
/// ...of which the last part is left for clients still waiting on the auth server, who
/// then get a 503 with Retry-After rather than a connection closed without an answer.
constexpr auto last_answers = std::chrono::milliseconds(500);

/// Crash dumps would hold secrets: no core files, no ptrace by other processes of our uid.
/// (The unit sets LimitCORE=0 as well, for the moments before main.)
void harden_process() {
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  rlimit none{0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
}

/// Settings baked into the AuthClient: a change needs a new client.
bool upstream_changed(const UpstreamConfig& a, const UpstreamConfig& b) {
  return a.auth_url.text != b.auth_url.text || a.ca_file != b.ca_file || a.connect_timeout != b.connect_timeout ||
         a.request_timeout != b.request_timeout;
}

VerifySettings verify_settings(const UpstreamConfig& u) { return VerifySettings{u.verify, u.issuer, u.verify_skew}; }

/// STATUS= is for a glance: a config error's first line, clipped.
std::string clip(std::string text, std::size_t max) {
  if (auto nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
  if (text.size() > max) text = text.substr(0, max - 3) + "...";
  return text;
}

// Members are declared in the order they are built, each after what it uses, so that they
// are destroyed in reverse: nothing outlives what it refers to.
struct Daemon {
  Daemon(Context& context, Config cfg, std::string level_override)
      : ctx(context), signal_set(context, SIGTERM, SIGINT, SIGHUP), config(std::move(cfg)),
        log_level_override(std::move(level_override)) {}

  Context& ctx;
  /// Caught from construction on, before READY=1: systemd may send SIGHUP right after it,
  /// and SIGHUP's default action would end the process.
  asio::signal_set signal_set;
  Config config;
  std::string log_level_override; ///< --log-level wins over the file, also after a reload
  SystemClock clock;
  SystemRandom random;
  Metrics metrics;
  /// The auth server client behind everything that calls it; a reload may swap it, and a
  /// replaced client is freed when its last request ends.
  SwappableUpstream<AuthClient> upstream;
  /// The upstream, timed for /metrics.
  MeteredUpstream metered{upstream, metrics, clock};
  /// The host's one upstream budget: credentials and customer sessions take their slots here.
  UpstreamBudget budget{config.upstream.max_requests_per_minute};
  BudgetFile budget_file{budget, clock}; ///< the budget's record across restarts
  std::shared_ptr<TokenStore> store;
  std::shared_ptr<SessionStore> session_store;   ///< customer sessions beyond memory
  std::unique_ptr<StoreKeySetKeeper> key_keeper; ///< the key set in the store, which `keys` uses
  /// The auth server's keys and the checks every token passes (docs/security.md).
  SigningKeys keys{ctx.get_executor(), upstream, clock, config.upstream.jwks_min_interval, config.upstream.jwks_max_age};
  TokenVerifier verifier{keys, clock, verify_settings(config.upstream)};
  /// What the broker and the sessions call: every token verified before they see it.
  VerifyingUpstream verifying{metered, verifier, clock, config.upstream.request_timeout};
  std::unique_ptr<Broker> broker;
  std::unique_ptr<Sessions> sessions; ///< customer sessions
  std::unique_ptr<Handler> handler;
  std::unique_ptr<Listener> listener;
  std::unique_ptr<systemd::Heartbeat> heartbeat;
  bool stopping = false;

  /// Reads the config file again and applies it as a whole, or not at all: "" on success,
  /// else why it was refused (the running config stays).
  std::string reload() {
    if (stopping) return "the daemon is stopping";
    systemd::notify(systemd::reloading_message(clock.now()));
    std::string error;
    try {
      Config next = load_config(config.path, system_config_environment());
      if (!log_level_override.empty()) next.log.level = log_level_override;
      for (const auto& w : next.warnings) spdlog::warn("{}", w);
      for (const auto& w : unit_principal_warnings(next.unit_principals)) spdlog::warn("{}", w);
      // Everything that can fail happens before the first change.
      std::shared_ptr<AuthClient> next_upstream;
      if (upstream_changed(config.upstream, next.upstream))
        next_upstream = std::make_shared<AuthClient>(ctx.get_executor(), next.upstream, clock);
      if (next.server.socket != config.server.socket && listener->owns_path())
        spdlog::warn("server.socket changed; the new path takes effect at the next restart");
      if (next.upstream.auth_url.text != config.upstream.auth_url.text || next.upstream.issuer != config.upstream.issuer)
        keys.reset(); // another auth server: its keys, not the old one's
      keys.set_min_interval(next.upstream.jwks_min_interval);
      keys.set_max_age(next.upstream.jwks_max_age);
      verifier.set(verify_settings(next.upstream));
      verifying.set_key_timeout(next.upstream.request_timeout);
      handler->set_verify_allow(next.server.verify_allow);
      handler->set_metrics_allow(next.server.metrics_allow);
      if (next_upstream) upstream.set(std::move(next_upstream)); // the old one goes with its last request
      budget_file.set_path(next.upstream.budget_path);
      broker->apply(next);
      sessions->apply(next);
      handler->set_admin(next.server.admin);
      handler->set_invalidate_rate(next.server.invalidate_burst, next.server.invalidate_interval);
      handler->set_access_log(next.log.access, next.log.access_per_minute);
      listener->update(next.server);
      heartbeat->set_fetch_bound(systemd::fetch_bound(next.upstream));
      heartbeat->set_note("");
      set_log_level(next.log.level);
      if (next.log.format != config.log.format) set_log_format(next.log.format);
      config = std::move(next);
      spdlog::info("config reloaded from {}: {} credentials", config.path, config.credentials.size());
    } catch (const std::exception& e) {
      error = e.what();
      heartbeat->set_note("last reload refused: " + clip(error, 160));
      spdlog::error("config reload refused, keeping the running config: {}", error);
    }
    heartbeat->ready();
    return error;
  }

  asio::awaitable<void> signals() {
    for (;;) {
      auto [ec, sig] = co_await signal_set.async_wait(use_tuple);
      if (ec) co_return;
      if (sig == SIGHUP) {
        spdlog::info("SIGHUP: reloading {}", config.path);
        reload();
        continue;
      }
      spdlog::info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      co_await shutdown();
      co_return;
    }
  }

  /// Stop accepting (under socket activation new clients queue in systemd's socket for the
  /// next instance), let in-flight requests finish within shutdown_grace, then stop.
  asio::awaitable<void> shutdown() {
    stopping = true;
    heartbeat->stop();
    systemd::notify(fmt::format("STOPPING=1\nSTATUS=stopping: {} connections open", listener->connections()));
    listener->stop();
    const SteadyTime deadline = clock.now() + shutdown_grace;
    co_await listener->wait_closed(deadline - last_answers);
    broker->stop(); // clients still waiting for the auth server get their 503 now
    sessions->stop();
    co_await listener->wait_closed(deadline);
    if (listener->connections() > 0)
      spdlog::warn("{} connections still open after {} s; closing them", listener->connections(), shutdown_grace.count());
    session_store->stop();
    store->stop();
    signal_set.cancel();
    // Everything that waits is cancelled now. What cannot be (an upstream request or a
    // store call in flight, a connection past the grace) would hold run() for up to its own
    // deadline: end the run here; main lets the cancelled work finish, then destroys the
    // rest while the objects it uses still exist (FinishFirst).
    ctx.stop();
  }
};

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"cl-tokend: keeps Commerce Layer access tokens fresh and serves them on a Unix socket"};
  std::string config_path = "/etc/cl-tokend/cl-tokend.toml";
  bool check = false;
  std::string log_level;
  app.add_option("-c,--config", config_path, "configuration file")->capture_default_str();
  app.add_flag("--check", check, "validate the config and every secret source, then exit");
  app.add_option("--log-level", log_level, "override log.level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.set_version_flag("--version", "cl-tokend " CLTOKEN_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "cl-tokend: %s\n", e.what());
    return 2;
  }

  harden_process();
  Config config;
  try {
    config = load_config(config_path, system_config_environment());
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "cl-tokend: %s\n", e.what());
    return 2;
  }
  if (check) {
    for (const auto& c : config.credentials) std::printf("%s\n", describe(c).c_str());
    for (const auto& w : config.warnings) std::printf("warning: %s\n", w.c_str());
    for (const auto& w : unit_principal_warnings(config.unit_principals)) std::printf("warning: %s\n", w.c_str());
    std::printf("%s: OK (%zu credentials, auth_url %s)\n", config.path.c_str(), config.credentials.size(),
                config.upstream.auth_url.text.c_str());
    return 0;
  }
  if (!log_level.empty()) config.log.level = log_level;
  setup_logging(config.log.level, config.log.format);
  for (const auto& w : config.warnings) spdlog::warn("{}", w);
  for (const auto& w : unit_principal_warnings(config.unit_principals)) spdlog::warn("{}", w);

  Context ctx(1);
  // The daemon keeps the one copy of the config (and of its secrets); what follows reads it there.
  Daemon d(ctx, std::move(config), log_level);
  // Every timer reads the daemon's clock (async/clock_timer.hpp).
  const ScopedTimerClock timer_clock(d.clock);
  const FinishFirst finish_first(ctx);
  const Config& cfg = d.config;
  try {
    d.upstream.set(std::make_shared<AuthClient>(ctx.get_executor(), cfg.upstream, d.clock));
    // Before the first fetch: what the last life spent in this minute is spent.
    d.budget_file.start(cfg.upstream.budget_path, cfg.upstream.request_timeout);
    // Tokens survive restarts / are shared by a fleet (docs/store.md); loaded before the first fetch.
    auto stores = make_stores(ctx.get_executor(), cfg, d.clock, d.random);
    d.store = std::move(stores.tokens);
    d.session_store = std::move(stores.sessions);
    d.key_keeper = std::make_unique<StoreKeySetKeeper>(ctx.get_executor(), *d.store, d.config, d.clock);
    d.keys.set_keeper(d.key_keeper.get());
    d.broker = std::make_unique<Broker>(ctx.get_executor(), d.clock, d.verifying, d.random, d.budget, cfg);
    d.broker->set_store(*d.store);
    d.sessions = std::make_unique<Sessions>(ctx.get_executor(), d.clock, d.verifying, d.budget, d.random, cfg);
    d.handler = std::make_unique<Handler>(*d.broker, d.metrics, d.clock, cfg.server.admin, [&d] { return d.reload(); });
    d.handler->set_sessions(*d.sessions);
    d.handler->set_invalidate_rate(cfg.server.invalidate_burst, cfg.server.invalidate_interval);
    d.handler->set_access_log(cfg.log.access, cfg.log.access_per_minute);
    d.handler->set_verifier(d.verifier, cfg.server.verify_allow);
    d.handler->set_metrics_allow(cfg.server.metrics_allow);
    d.sessions->set_verifier(d.verifier);
    d.sessions->set_store(*d.session_store);
    d.keys.on_request([&d](const char* outcome) { d.metrics.count_jwks(outcome); });
    if (auto fd = systemd::listen_fd()) {
      // Socket activation: systemd owns the socket, so clients can connect while we start
      // or restart; server.socket, socket_mode and socket_group do not apply.
      d.listener = std::make_unique<Listener>(ctx.get_executor(), *fd, cfg.server, *d.handler, d.clock);
      spdlog::info("listening on the socket passed by systemd");
    } else {
      d.listener = std::make_unique<Listener>(ctx.get_executor(), cfg.server, *d.handler, d.clock);
      spdlog::info("listening on {}", cfg.server.socket);
    }
    d.heartbeat =
        std::make_unique<systemd::Heartbeat>(ctx.get_executor(), d.clock, *d.broker, systemd::fetch_bound(cfg.upstream));
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    std::fprintf(stderr, "cl-tokend: %s\n", e.what());
    return 1;
  }
  d.listener->start();
  d.broker->start();
  d.sessions->start(cfg);
  // Ready as soon as the socket accepts, not when the first tokens arrive: clients can
  // connect (and wait for their token) while the auth server is slow or down.
  d.heartbeat->ready();
  spdlog::info("cl-tokend {} ready: {} credentials, upstream {}", CLTOKEN_VERSION, cfg.credentials.size(),
               cfg.upstream.auth_url.text);
  asio::co_spawn(ctx, d.signals(), Rethrow{"the signal handler"});
  asio::co_spawn(ctx, d.heartbeat->run(), Rethrow{"the systemd heartbeat"});
  try {
    ctx.run();
    // The coroutines shutdown() cancelled end now, each through its own error path.
    ctx.restart();
    ctx.poll();
  } catch (const std::exception& e) {
    spdlog::critical("fatal: {}", e.what());
    return 1;
  }
  spdlog::info("stopped");
  return 0;
}

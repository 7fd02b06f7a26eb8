// cl-tokend: wires the pieces together in order and tears them down in reverse.
// main owns the io_context (DESIGN.md principle 4); everything else gets an executor.
#include <sys/prctl.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/ranges.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "broker/broker.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "server/handler.hpp"
#include "server/listener.hpp"
#include "systemd/notify.hpp"
#include "upstream/auth_client.hpp"
#include "upstream/metered_upstream.hpp"

namespace asio = boost::asio;
using namespace cltoken;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr auto shutdown_grace = std::chrono::seconds(5);

/// Crash dumps would hold secrets: no core files, no ptrace by other processes of our uid.
void harden_process() {
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  rlimit none{0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
}

/// "3/3 credentials fresh" or "1 failing: backoffice; 2 fresh" for systemctl status.
std::string summary(const StatusView& s) {
  std::map<std::string, std::vector<std::string>> by_state;
  for (const auto& c : s.credentials) by_state[to_string(c.state)].push_back(c.name);
  if (s.credentials.empty()) return "no credentials configured";
  if (by_state.size() == 1)
    return fmt::format("{}/{} credentials {}", s.credentials.size(), s.credentials.size(), by_state.begin()->first);
  std::string out;
  for (const char* bad : {"failing", "expired", "stale", "empty", "fetching", "refreshing", "fresh"}) {
    auto it = by_state.find(bad);
    if (it == by_state.end()) continue;
    if (!out.empty()) out += "; ";
    const bool name_them = std::string_view(bad) == "failing" || std::string_view(bad) == "expired";
    out += fmt::format("{} {}", it->second.size(), bad);
    if (name_them) out += ": " + fmt::format("{}", fmt::join(it->second, ", "));
  }
  return out;
}

struct Daemon {
  Daemon(asio::io_context& context, Config cfg) : ctx(context), config(std::move(cfg)) {}

  asio::io_context& ctx;
  Config config;
  SystemClock clock;
  SystemRandom random;
  Metrics metrics;
  std::unique_ptr<AuthClient> upstream;
  std::vector<std::unique_ptr<AuthClient>> retired; // replaced clients may still have a request in flight
  std::unique_ptr<Broker> broker;
  std::unique_ptr<Handler> handler;
  std::unique_ptr<Listener> listener;
  bool stopping = false;

  /// Reads the config file again; "" on success, else why it was refused.
  std::string reload() {
    systemd::notify("RELOADING=1");
    std::string error;
    try {
      Config next = load_config(config.path, system_config_environment());
      if (next.server.socket != config.server.socket && listener->owns_path())
        spdlog::warn("server.socket changed; the new path takes effect at the next restart");
      if (next.upstream.auth_url.text != config.upstream.auth_url.text || next.upstream.ca_file != config.upstream.ca_file ||
          next.upstream.connect_timeout != config.upstream.connect_timeout ||
          next.upstream.request_timeout != config.upstream.request_timeout) {
        // Upstream settings changed: new client; the broker keeps the Upstream& it has,
        // so swap the object behind a stable proxy.
        retired.push_back(std::move(upstream));
        upstream = std::make_unique<AuthClient>(ctx.get_executor(), next.upstream, clock);
        proxy.target = upstream.get();
      }
      broker->apply(next);
      handler->set_admin(next.server.admin);
      listener->update(next.server);
      set_log_level(next.log.level);
      config = std::move(next);
      spdlog::info("config reloaded from {}: {} credentials", config.path, config.credentials.size());
    } catch (const std::exception& e) {
      error = e.what();
      spdlog::error("config reload refused, keeping the running config: {}", error);
    }
    systemd::notify("READY=1\nSTATUS=" + summary(broker->status_view()));
    return error;
  }

  /// Forwards to the current AuthClient, so a reload can replace it.
  struct UpstreamProxy final : Upstream {
    Upstream* target = nullptr;
    asio::awaitable<UpstreamResult> request_token(const TokenRequest& r) override {
      Upstream* t = target;
      co_return co_await t->request_token(r);
    }
    asio::awaitable<std::optional<UpstreamFailure>> revoke(const std::string& id, const std::optional<Secret>& secret,
                                                           const Secret& token) override {
      Upstream* t = target;
      co_return co_await t->revoke(id, secret, token);
    }
  } proxy;
  /// What the broker calls: the proxy, timed for /metrics.
  MeteredUpstream metered{proxy, metrics, clock};

  asio::awaitable<void> signals() {
    asio::signal_set set(ctx, SIGTERM, SIGINT, SIGHUP);
    for (;;) {
      auto [ec, sig] = co_await set.async_wait(use_tuple);
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

  /// Stop accepting, let in-flight requests finish (at most shutdown_grace), then stop.
  asio::awaitable<void> shutdown() {
    stopping = true;
    systemd::notify("STOPPING=1");
    listener->stop();
    asio::steady_timer t(ctx);
    const auto deadline = clock.now() + shutdown_grace;
    while (listener->connections() > 0 && clock.now() < deadline) {
      t.expires_after(std::chrono::milliseconds(20));
      co_await t.async_wait(use_tuple);
    }
    if (listener->connections() > 0) spdlog::warn("{} connections still open after {} s; closing", listener->connections(), shutdown_grace.count());
    broker->stop();
    ctx.stop();
  }

  /// STATUS= for systemctl status, and the watchdog ping: both from this loop, so a
  /// stuck event loop stops the pings and systemd restarts the daemon.
  asio::awaitable<void> heartbeat() {
    auto watchdog = systemd::watchdog_interval();
    const auto period = watchdog ? std::min<std::chrono::microseconds>(*watchdog / 3, std::chrono::seconds(5))
                                 : std::chrono::microseconds(std::chrono::seconds(5));
    asio::steady_timer t(ctx);
    std::string last;
    while (!stopping) {
      std::string now = summary(broker->status_view());
      if (now != last) {
        systemd::notify("STATUS=" + now);
        last = now;
      }
      if (watchdog) systemd::notify("WATCHDOG=1");
      t.expires_after(period);
      co_await t.async_wait(use_tuple);
    }
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
  app.add_option("--log-level", log_level, "override log.level")->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
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
    std::printf("%s: OK (%zu credentials, auth_url %s)\n", config.path.c_str(), config.credentials.size(),
                config.upstream.auth_url.text.c_str());
    return 0;
  }
  if (!log_level.empty()) config.log.level = log_level;
  setup_logging(config.log.level, config.log.format);

  asio::io_context ctx(1);
  Daemon d(ctx, config);
  try {
    d.upstream = std::make_unique<AuthClient>(ctx.get_executor(), config.upstream, d.clock);
    d.proxy.target = d.upstream.get();
    d.broker = std::make_unique<Broker>(ctx.get_executor(), d.clock, d.metered, d.random, config);
    d.handler = std::make_unique<Handler>(*d.broker, d.metrics, d.clock, config.server.admin, [&d] { return d.reload(); });
    if (auto fd = systemd::listen_fd()) {
      d.listener = std::make_unique<Listener>(ctx.get_executor(), *fd, config.server, *d.handler, d.clock);
      spdlog::info("listening on the socket passed by systemd");
    } else {
      d.listener = std::make_unique<Listener>(ctx.get_executor(), config.server, *d.handler, d.clock);
      spdlog::info("listening on {}", config.server.socket);
    }
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    std::fprintf(stderr, "cl-tokend: %s\n", e.what());
    return 1;
  }
  d.listener->start();
  d.broker->start();
  // Ready as soon as the socket accepts: clients can connect while tokens are fetched.
  systemd::notify("READY=1\nSTATUS=" + summary(d.broker->status_view()));
  spdlog::info("cl-tokend {} ready: {} credentials, upstream {}", CLTOKEN_VERSION, config.credentials.size(),
               config.upstream.auth_url.text);
  auto rethrow = [](std::exception_ptr p) {
    if (p) std::rethrow_exception(p);
  };
  asio::co_spawn(ctx, d.signals(), rethrow);
  asio::co_spawn(ctx, d.heartbeat(), rethrow);
  try {
    ctx.run();
  } catch (const std::exception& e) {
    spdlog::critical("fatal: {}", e.what());
    return 1;
  }
  d.listener.reset();
  spdlog::info("stopped");
  return 0;
}

// Fuzzes the socket request path: bytes a local peer sends -> the daemon's answers,
// through the real code: run_connection (Beast's request parser, header/body limits,
// keep-alive, per-peer slots) -> Handler (router, access control) -> Broker, with a
// scripted upstream that answers at once. A socketpair stands in for the listener's
// accept; nothing else is faked.
//
// Input: the first byte picks the peer (a stranger, root = admin, or a member of the
// group a credential allows); the rest is what the peer writes before closing its side.
// Besides memory errors (ASan/UBSan), these are findings: an exception out of a
// connection (a client would lose its answer), a token of a credential the peer may not
// read in its answers, the client secret anywhere in the answers, or answers that are
// not HTTP/1.1.
#include <sys/socket.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <string_view>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "broker/broker.hpp"
#include "core/metrics.hpp"
#include "server/connection.hpp"
#include "server/handler.hpp"

namespace asio = boost::asio;
using namespace cltoken;

namespace {

constexpr std::string_view client_secret = "fuzz-client-secret-value";
constexpr std::string_view closed_marker = "tok-closed-";

/// Answers every token request at once with a token that names its client_id, so an
/// answer can be traced back to the credential it belongs to.
class ScriptedUpstream final : public Upstream {
public:
  asio::awaitable<UpstreamResult> request_token(const TokenRequest& r) override {
    TokenGrant g;
    g.access_token = Secret("eyJhbGciOiJub25lIn0.tok-" + r.client_id + "-" + std::to_string(++issued_) + ".c2ln");
    g.expires_in = Seconds(7200);
    g.scope = r.scope;
    co_return g;
  }
  asio::awaitable<std::optional<UpstreamFailure>> revoke(const std::string&, const std::optional<Secret>&,
                                                         const Secret&) override {
    co_return std::nullopt;
  }

private:
  unsigned issued_ = 0;
};

class FixedRandom final : public Random {
public:
  double uniform() override { return 0.5; }
};

Principal principal(Principal::Kind kind, unsigned id, std::string text) { return Principal{kind, id, std::move(text), {}}; }

CredentialConfig credential(std::string name, CredentialKind kind, std::string client_id, std::vector<Principal> allow) {
  CredentialConfig c;
  c.name = std::move(name);
  c.kind = kind;
  c.client_id = std::move(client_id);
  if (kind == CredentialKind::integration) c.client_secret = Secret(std::string(client_secret));
  c.allow = std::move(allow);
  return c;
}

Config make_config() {
  Config cfg;
  cfg.server.socket = "/nonexistent/fuzz.sock";
  cfg.server.admin = {principal(Principal::Kind::uid, 0, "uid:0")};
  cfg.server.max_header_bytes = 2048;
  cfg.server.max_body_bytes = 4096;
  cfg.server.request_timeout = Millis(200); // bounds any wait a finding might cause
  cfg.server.idle_timeout = Millis(200);
  cfg.server.max_requests_per_peer = 4;
  cfg.upstream.max_requests_per_minute = 100000; // never the limit within one input
  cfg.credentials.push_back(credential("open", CredentialKind::sales_channel, "open", {principal(Principal::Kind::any, 0, "*")}));
  cfg.credentials.push_back(
      credential("closed", CredentialKind::integration, "closed", {principal(Principal::Kind::uid, 0, "uid:0")}));
  cfg.credentials.push_back(
      credential("by-group", CredentialKind::sales_channel, "group", {principal(Principal::Kind::gid, 100, "gid:100")}));
  return cfg;
}

PeerIdentity peer_for(std::uint8_t selector) {
  PeerIdentity p;
  p.pid = 4242;
  switch (selector % 3) {
  case 0:
    p.uid = 1000;
    p.gid = 1000;
    p.groups = {1000};
    break; // a stranger
  case 1:
    p.uid = 0;
    p.gid = 0;
    p.groups = {0};
    break; // root: admin, reads "closed"
  default:
    p.uid = 1001;
    p.gid = 1001;
    p.groups = {1001, 100};
    break; // member of group 100
  }
  return p;
}

/// The peer: writes everything, closes its sending side, and reads every answer until
/// the daemon closes. (A named coroutine: GCC 12 mis-mangles coroutine lambdas in an
/// extern "C" function.)
asio::awaitable<void> play_peer(asio::local::stream_protocol::socket& socket, const std::string& input, std::string& output,
                                bool& done) {
  constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
  co_await asio::async_write(socket, asio::buffer(input), tuple);
  boost::system::error_code ignored;
  socket.shutdown(asio::socket_base::shutdown_send, ignored);
  char buf[8192];
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), tuple);
    output.append(buf, n);
    if (ec) break;
  }
  done = true;
}

[[noreturn]] void finding(const char* what, const std::string& output) {
  std::fprintf(stderr, "FINDING: %s\n--- answers (%zu bytes) ---\n%.*s\n", what, output.size(),
               static_cast<int>(std::min<std::size_t>(output.size(), 4000)), output.data());
  std::abort();
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::signal(SIGPIPE, SIG_IGN); // the daemon's writes use MSG_NOSIGNAL; the harness's reads need nothing
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const PeerIdentity peer = peer_for(data[0]);
  const std::string input(reinterpret_cast<const char*>(data + 1), size - 1);

  static const Config config = make_config();
  asio::io_context ctx(1);
  SystemClock clock;
  ScriptedUpstream upstream;
  FixedRandom random;
  Metrics metrics;
  UpstreamBudget budget(config.upstream.max_requests_per_minute);
  Broker broker(ctx.get_executor(), clock, upstream, random, budget, config);
  Handler handler(broker, metrics, clock, config.server.admin, [] { return std::string(); });
  ConnectionControl control;
  control.slots.set_limit(config.server.max_requests_per_peer);
  broker.start();

  asio::local::stream_protocol::socket daemon_side(ctx), peer_side(ctx);
  asio::local::connect_pair(daemon_side, peer_side);
  bool connection_done = false;
  bool peer_done = false;
  std::string output;
  asio::co_spawn(ctx, run_connection(std::move(daemon_side), peer, config.server, handler, clock, control),
                 [&](std::exception_ptr e) {
                   if (e) finding("an exception escaped run_connection: the client loses its answer", output);
                   connection_done = true;
                 });
  asio::co_spawn(ctx, play_peer(peer_side, input, output, peer_done), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  while (!(connection_done && peer_done)) ctx.run_one();
  broker.stop();
  ctx.run(); // lets the scheduler and any fetch wind down

  if (std::getenv("CLTOKEN_FUZZ_SHOW") != nullptr) std::fprintf(stderr, "%s\n", output.c_str()); // to look at seeds
  if (!output.empty() && output.rfind("HTTP/1.1 ", 0) != 0) finding("an answer that is not HTTP/1.1", output);
  if (output.find(client_secret) != std::string::npos) finding("the client secret in an answer", output);
  if (peer.uid != 0 && output.find(closed_marker) != std::string::npos)
    finding("a token of a credential this peer may not read", output);
  return 0;
}

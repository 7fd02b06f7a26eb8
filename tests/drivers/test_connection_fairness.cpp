// daemon/server/connection's loop between connections: a client whose next request is
// always there already (here: thousands pipelined on one connection) must not keep another
// connection's single request waiting behind all of them. Real Unix sockets and the real
// run_connection and Handler; the io_context runs one event at a time, so the order is
// read from the sockets after each event instead of from a clock.
#include <catch2/catch.hpp>

#include <boost/asio/local/connect_pair.hpp>
#include <spdlog/spdlog.h>

#include "broker/broker.hpp"
#include "core/metrics.hpp"
#include "server/connection.hpp"
#include "server/handler.hpp"
#include "virtual_driver.hpp"
#include "virtual_io.hpp"

using namespace cltoken;
using namespace cltoken::test;
using namespace std::chrono_literals;

namespace {

namespace asio = boost::asio;
using Socket = asio::local::stream_protocol::socket;

class HalfRandom final : public Random {
public:
  double uniform() override { return 0.5; }
};

/// The client end of one connection: what it sent, and the answers it has read so far.
struct Peer {
  explicit Peer(Context& ctx) : daemon_side(ctx), socket(ctx) {
    asio::local::connect_pair(daemon_side, socket);
    socket.non_blocking(true);
  }
  /// Writes `bytes` whole (they fit in the socket's buffer).
  void send(const std::string& bytes) {
    boost::system::error_code ec;
    const std::size_t n = socket.send(asio::buffer(bytes), 0, ec);
    REQUIRE(!ec);
    REQUIRE(n == bytes.size());
  }
  /// Reads what has arrived, without waiting; counts the answers and their 200s.
  void read() {
    char buf[65536];
    for (;;) {
      boost::system::error_code ec;
      const std::size_t n = socket.receive(asio::buffer(buf), 0, ec);
      if (ec) break;
      text.append(buf, n);
    }
    for (std::size_t at; (at = text.find("HTTP/1.1 ", scanned)) != std::string::npos; scanned = at + 9) {
      ++answers;
      if (text.compare(at + 9, 3, "200") == 0) ++ok;
    }
    if (text.size() > 8) { // only the tail can hold the start of a status line cut in two
      text.erase(0, text.size() - 8);
      scanned = 0;
    }
  }
  Socket daemon_side;
  Socket socket;
  std::string text;
  std::size_t scanned = 0;
  std::size_t answers = 0;
  std::size_t ok = 0;
};

} // namespace

TEST_CASE("thousands of requests pipelined on one connection do not keep another connection's request waiting") {
  const auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  FakeClock clock;
  const ScopedTimerClock timers(clock, true);
  Context ctx(1);
  ScriptedUpstream upstream(ctx.get_executor(), 0ms, [](const TokenRequest&) {
    TokenGrant g;
    g.access_token = Secret("eyJhbGciOiJub25lIn0.held-token.c2ln");
    g.expires_in = 7200s;
    return UpstreamResult{std::move(g)};
  });
  Config config = make_config(1, 1000, RefreshPolicy{});
  config.credentials[0].allow = {Principal{Principal::Kind::any, 0, "*", {}}};
  UpstreamBudget budget(config.upstream.max_requests_per_minute);
  HalfRandom random;
  Metrics metrics;
  Broker broker(ctx.get_executor(), clock, upstream, random, budget, config);
  Handler handler(broker, metrics, clock, config.server.admin, [] { return std::string(); });
  ConnectionControl control;
  Peer busy(ctx), other(ctx);
  PeerIdentity identity;
  identity.uid = 1000;
  identity.gid = 1000;
  int running = 0;
  for (Peer* p : {&busy, &other}) {
    ++running;
    asio::co_spawn(ctx, run_connection(std::move(p->daemon_side), identity, config.server, handler, clock, control),
                   [&running](std::exception_ptr e) {
                     --running;
                     if (e) std::rethrow_exception(e);
                   });
  }
  const FinishFirst finish(ctx);
  broker.start();

  // The held token (answered in the event that read the request) and a route answered by
  // a coroutine that never waits: both are served without the connection waiting.
  const std::string route = GENERATE(std::string("/v1/tokens/c0"), std::string("/v1/health"));
  const std::string request = "GET " + route + " HTTP/1.1\r\nHost: x\r\n\r\n";
  if (route.starts_with("/v1/tokens/")) { // the token is fetched once, then held
    other.send(request);
    REQUIRE(run_virtual(
        ctx, clock,
        [&] {
          other.read();
          return other.answers == 1;
        },
        10s));
    REQUIRE(other.ok == 1);
  }
  ctx.restart();
  ctx.poll(); // both connections wait for their next request
  other.answers = other.ok = 0;

  constexpr std::size_t pipelined = 2000;
  std::string burst;
  for (std::size_t i = 0; i < pipelined; ++i) burst += request;
  busy.send(burst); // first: its connection's event comes first
  other.send(request);
  ctx.restart();
  for (int events = 0; other.answers == 0 && events < 100000; ++events) {
    if (ctx.poll_one() == 0) break; // nothing ready is a stuck request: fails below
    busy.read();
    other.read();
  }
  REQUIRE(other.answers == 1);
  CHECK(other.ok == 1);
  // At most one turn of the busy connection came before it, not its whole pipeline.
  CHECK(busy.answers <= max_served_in_a_row);

  // Every pipelined request is still answered, none lost to the turns.
  for (int events = 0; busy.answers < pipelined && events < 1000000; ++events) {
    if (ctx.poll_one() == 0) break;
    busy.read();
  }
  CHECK(busy.answers == pipelined);
  CHECK(busy.ok == pipelined);

  busy.socket.close();
  other.socket.close();
  broker.stop();
  REQUIRE(run_virtual(
      ctx, clock, [&] { return running == 0; }, 60s));
  spdlog::set_level(level);
}

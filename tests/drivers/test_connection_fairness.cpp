// daemon/server/connection's loop between connections: a client whose next request is
// always there already (here: thousands pipelined on one connection) must not keep another
// connection's single request waiting behind all of them; and a client too slow to take
// its answers gets each as it was made, though the fast path sends views of a document
// that other requests may render again meanwhile. Real Unix sockets and the real
// run_connection and Handler; the io_context runs one event at a time, so the order is
// read from the sockets after each event instead of from a clock.
#include <catch2/catch.hpp>

#include <boost/asio/local/connect_pair.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

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
      all.append(buf, n);
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
  std::string all; ///< every byte read
  std::size_t scanned = 0;
  std::size_t answers = 0;
  std::size_t ok = 0;
};

/// The real broker, handler and connections over socket pairs, in virtual time, serving one
/// integration credential whose token the scripted upstream hands out.
struct Served {
  Served() { spdlog::set_level(spdlog::level::off); }
  ~Served() { spdlog::set_level(level); }
  /// Runs the daemon's end of `p` as the connection of uid 1000.
  void connect(Peer& p) {
    PeerIdentity identity;
    identity.uid = 1000;
    identity.gid = 1000;
    ++running;
    asio::co_spawn(ctx, run_connection(std::move(p.daemon_side), identity, config.server, handler, clock, control),
                   [this](std::exception_ptr e) {
                     --running;
                     if (e) std::rethrow_exception(e);
                   });
  }
  /// Serves both peers and starts the broker.
  void start(Peer& a, Peer& b) {
    connect(a);
    connect(b);
    broker.start();
  }
  /// `request` (a held token's GET) sent on `p` and its one answer read: the token is
  /// fetched once, then held.
  void first_answer(Peer& p, const std::string& request) {
    p.send(request);
    REQUIRE(run_virtual(
        ctx, clock,
        [&] {
          p.read();
          return p.answers == 1;
        },
        10s));
    REQUIRE(p.ok == 1);
  }
  void stop() {
    broker.stop();
    REQUIRE(run_virtual(
        ctx, clock, [&] { return running == 0; }, 60s));
  }

  spdlog::level::level_enum level = spdlog::get_level();
  FakeClock clock;
  ScopedTimerClock timers{clock, true};
  Context ctx{1};
  ScriptedUpstream upstream{ctx.get_executor(), 0ms, [](const TokenRequest&) {
                              TokenGrant g;
                              g.access_token = Secret("eyJhbGciOiJub25lIn0.held-token.c2ln");
                              g.expires_in = 7200s;
                              return UpstreamResult{std::move(g)};
                            }};
  Config config = [] {
    Config c = make_config(1, 1000, RefreshPolicy{});
    c.credentials[0].allow = {Principal{Principal::Kind::any, 0, "*", {}}};
    return c;
  }();
  UpstreamBudget budget{config.upstream.max_requests_per_minute};
  HalfRandom random;
  Metrics metrics;
  Broker broker{ctx.get_executor(), clock, upstream, random, budget, config};
  Handler handler{broker, metrics, clock, config.server.admin, [] { return std::string(); }};
  ConnectionControl control;
  int running = 0;
};

} // namespace

TEST_CASE("thousands of requests pipelined on one connection do not keep another connection's request waiting") {
  Served d;
  auto& ctx = d.ctx;
  Peer busy(ctx), other(ctx);
  const FinishFirst finish(ctx);
  d.start(busy, other);

  // The held token (answered in the event that read the request) and a route answered by
  // a coroutine that never waits: both are served without the connection waiting.
  const std::string route = GENERATE(std::string("/v1/tokens/c0"), std::string("/v1/health"));
  const std::string request = "GET " + route + " HTTP/1.1\r\nHost: x\r\n\r\n";
  if (route.starts_with("/v1/tokens/")) d.first_answer(other, request);
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
  d.stop();
}

namespace {

/// The expires_in of each answer in `all`, in order (each head's Content-Length framing
/// its body, and each body the held token's document).
std::vector<long> expiries(const std::string& all, const std::string& token) {
  std::vector<long> out;
  for (std::size_t at = 0; at < all.size();) {
    REQUIRE(all.compare(at, 15, "HTTP/1.1 200 OK") == 0);
    const auto end = all.find("\r\n\r\n", at);
    REQUIRE(end != std::string::npos);
    const auto length_at = all.find("Content-Length: ", at);
    REQUIRE(length_at < end);
    const std::size_t length = std::stoul(all.substr(length_at + 16, end - length_at - 16));
    const auto doc = nlohmann::json::parse(all.substr(end + 4, length));
    CHECK(doc.at("access_token") == token);
    out.push_back(doc.at("expires_in").get<long>());
    at = end + 4 + length;
  }
  return out;
}

} // namespace

TEST_CASE("an answer the socket takes only in part is finished from a copy, whatever is served meanwhile") {
  // The fast path sends views of the held document; a reader too slow to take the answer
  // at once gets the rest later, after other requests may have rendered the document's
  // parts again. What it gets must be the answer as it was when made.
  Served d;
  auto& ctx = d.ctx;
  auto& clock = d.clock;
  Peer slow(ctx), other(ctx);
  const FinishFirst finish(ctx);
  d.start(slow, other);
  const std::string request = "GET /v1/tokens/c0 HTTP/1.1\r\nHost: x\r\n\r\n";
  d.first_answer(other, request);

  // Far more answers than the socket holds, none read: the daemon stops in the middle.
  constexpr std::size_t pipelined = 2000;
  std::string burst;
  for (std::size_t i = 0; i < pipelined; ++i) burst += request;
  slow.send(burst);
  ctx.restart();
  while (ctx.poll_one() != 0) {}
  // The daemon stopped at an answer the socket did not take (all or part of it waits
  // with the daemon); every answer made so far has the document as it is now. Nothing is
  // read yet, so that answer still waits while the document changes below.
  const std::size_t made_before = d.broker.status_view().credentials.at(0).counters.served - 1; // less other's
  REQUIRE(made_before < pipelined);

  // Five seconds on, another connection's answer renders the document's parts again.
  clock.advance(5s);
  other.send(request);
  ctx.restart();
  for (int events = 0; other.answers < 2 && events < 100000; ++events) {
    if (ctx.poll_one() == 0) break;
    other.read();
  }
  REQUIRE(other.answers == 2);

  for (int events = 0; slow.answers < pipelined && events < 1000000; ++events) {
    ctx.poll_one();
    slow.read();
  }
  REQUIRE(slow.answers == pipelined);
  const auto seen = expiries(slow.all, "eyJhbGciOiJub25lIn0.held-token.c2ln");
  REQUIRE(seen.size() == pipelined);
  const std::vector<long> before(seen.begin(), seen.begin() + static_cast<long>(made_before));
  CHECK(std::all_of(before.begin(), before.end(), [&](long e) { return e == seen.front(); }));
  CHECK(std::all_of(seen.begin() + static_cast<long>(made_before), seen.end(), [&](long e) { return e == seen.front() - 5; }));

  slow.socket.close();
  other.socket.close();
  d.stop();
}

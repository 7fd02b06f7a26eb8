// The watchdog pings only while the refresh loop makes progress: the broker's own
// bookkeeping, read with a hand-moved clock and a network that never answers.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/broker.hpp"
#include "fake_clock.hpp"
#include "systemd/notify.hpp"
#include "systemd/watchdog.hpp"

using namespace cltoken;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

/// An auth server that never answers: every request waits on a timer nobody fires.
class SilentUpstream final : public Upstream {
public:
  explicit SilentUpstream(asio::any_io_executor ex) : never_(ex, SteadyTime::max()) {}
  asio::awaitable<UpstreamResult> request_token(const TokenRequest&) override {
    ++requests;
    co_await never_.async_wait(asio::use_awaitable);
    co_return UpstreamFailure{};
  }
  asio::awaitable<std::optional<UpstreamFailure>> revoke(const std::string&, const std::optional<Secret>&,
                                                         const Secret&) override {
    co_return std::nullopt;
  }
  int requests = 0;

private:
  asio::steady_timer never_;
};

class HalfRandom final : public Random {
public:
  double uniform() override { return 0.5; }
};

Config one_credential() {
  Config c;
  CredentialConfig cred;
  cred.name = "backoffice";
  cred.client_id = "it-backoffice";
  c.credentials.push_back(cred);
  return c;
}

} // namespace

TEST_CASE("the fetch bound follows the upstream deadlines") {
  UpstreamConfig u;
  u.connect_timeout = 5s;
  u.request_timeout = 10s;
  CHECK(systemd::fetch_bound(u) == 10s + systemd::scheduler_slack);
}

TEST_CASE("a scheduler that is waiting for its next wake-up is making progress") {
  test::FakeClock clock;
  Broker::Progress p{true, clock.now() + 1h, std::nullopt};
  CHECK_FALSE(systemd::refresh_loop_stall(p, clock.now(), 30s));
  p.next_wake = clock.now() - systemd::scheduler_slack + 1s; // late, within the slack
  CHECK_FALSE(systemd::refresh_loop_stall(p, clock.now(), 30s));
}

TEST_CASE("a scheduler that did not wake when due is stuck") {
  test::FakeClock clock;
  Broker::Progress p{true, clock.now(), std::nullopt};
  clock.advance(systemd::scheduler_slack + 1s);
  auto why = systemd::refresh_loop_stall(p, clock.now(), 30s);
  REQUIRE(why);
  CHECK(why->find("should have run 11 s ago") != std::string::npos);
}

TEST_CASE("a stopped scheduler is stuck") {
  test::FakeClock clock;
  CHECK(systemd::refresh_loop_stall(Broker::Progress{false, clock.now() + 1h, std::nullopt}, clock.now(), 30s));
}

TEST_CASE("the broker's fetch that outlives every deadline stops the watchdog") {
  asio::io_context ctx;
  test::FakeClock clock;
  SilentUpstream upstream(ctx.get_executor());
  HalfRandom random;
  const Config config = one_credential();
  UpstreamBudget budget(config.upstream.max_requests_per_minute);
  Broker broker(ctx.get_executor(), clock, upstream, random, budget, config);
  broker.start();
  ctx.poll(); // the scheduler's first pass: the cold credential is fetched at once
  REQUIRE(upstream.requests == 1);

  const SteadyTime started = clock.now();
  auto p = broker.progress();
  CHECK(p.running);
  REQUIRE(p.oldest_fetch);
  CHECK(*p.oldest_fetch == started);
  CHECK(p.next_wake > started); // asleep until something changes
  const auto bound = 30s;
  CHECK_FALSE(systemd::refresh_loop_stall(p, clock.now(), bound));

  clock.advance(bound); // slow, but within what the deadlines allow
  CHECK_FALSE(systemd::refresh_loop_stall(broker.progress(), clock.now(), bound));
  clock.advance(1s);
  auto why = systemd::refresh_loop_stall(broker.progress(), clock.now(), bound);
  REQUIRE(why);
  CHECK(why->find("in flight for 31 s") != std::string::npos);

  broker.stop();
  CHECK(systemd::refresh_loop_stall(broker.progress(), clock.now(), bound));
}

TEST_CASE("RELOADING=1 carries the monotonic time in microseconds") {
  CHECK(systemd::reloading_message(SteadyTime{} + 1234567us) == "RELOADING=1\nMONOTONIC_USEC=1234567");
}

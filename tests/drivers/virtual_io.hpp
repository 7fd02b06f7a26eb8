#pragma once
// Asio in virtual time: every timer reads the test's FakeClock (async/clock_timer.hpp); the
// test polls the context for what is ready now and moves the clock. Nothing sleeps.
#include <functional>
#include <memory>
#include <optional>

#include <boost/asio/co_spawn.hpp>

#include "async/clock_timer.hpp"
#include "async/context.hpp"
#include "async/spawn.hpp"
#include "fake_clock.hpp"
#include "upstream/jwks_source.hpp"
#include "upstream/upstream.hpp"

namespace cltoken::test {

/// Polls `ctx` and moves `clock` by `step` until `done()`; false if `limit` passed first.
inline bool run_virtual(Context& ctx, FakeClock& clock, const std::function<bool()>& done, SteadyClock::duration limit,
                        SteadyClock::duration step = std::chrono::milliseconds(50)) {
  const SteadyTime end = clock.now() + limit;
  for (;;) {
    ctx.restart();
    ctx.poll();
    if (done()) return true;
    if (clock.now() >= end) return false;
    clock.advance(step);
  }
}

/// Starts `task` on `ctx`; its result lands in the returned slot.
template <class T>
std::shared_ptr<std::optional<T>> start(Context& ctx, boost::asio::awaitable<T> task) {
  auto out = std::make_shared<std::optional<T>>();
  boost::asio::co_spawn(ctx, std::move(task), [out](std::exception_ptr p, T value) {
    if (p) std::rethrow_exception(p);
    *out = std::move(value);
  });
  return out;
}

/// The auth server as a script: every answer comes after `latency` of virtual time.
class ScriptedUpstream final : public Upstream, public JwksSource {
public:
  using Answer = std::function<UpstreamResult(const TokenRequest&)>;
  ScriptedUpstream(boost::asio::any_io_executor executor, Millis delay, Answer answer)
      : latency(delay), executor_(std::move(executor)), answer_(std::move(answer)) {
    ++alive;
  }
  ~ScriptedUpstream() override { --alive; }
  ScriptedUpstream(const ScriptedUpstream&) = delete;
  ScriptedUpstream& operator=(const ScriptedUpstream&) = delete;

  boost::asio::awaitable<UpstreamResult> request_token(const TokenRequest& request) override {
    ++requests;
    co_await pause();
    co_return answer_(request);
  }
  boost::asio::awaitable<std::optional<UpstreamFailure>> revoke(const std::string&, const std::optional<Secret>&,
                                                                const Secret& token) override {
    co_await pause();
    revoked.push_back(std::string(token.reveal()));
    co_return std::nullopt;
  }
  boost::asio::awaitable<JwksAnswer> fetch_jwks() override {
    co_await pause();
    co_return UpstreamFailure{FailureKind::network_error, "no keys in this test", {}, 0, {}};
  }

  static inline int alive = 0; ///< instances not yet destroyed
  Millis latency;
  int requests = 0;
  std::vector<std::string> revoked;

private:
  boost::asio::awaitable<void> pause() {
    ClockTimer t(executor_, TimerClock::now() + latency);
    co_await t.async_wait(use_tuple);
  }
  boost::asio::any_io_executor executor_;
  Answer answer_;
};

} // namespace cltoken::test

#include "store/redis_client.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

#include "async/spawn.hpp"
#include "async/tls_client.hpp"

namespace cltoken {

namespace asio = boost::asio;

namespace {
/// How often an idle connection is checked with PING: Redis restarting between two
/// refreshes is noticed (and the shared tokens re-published) within this, not at the
/// next refresh an hour later. One PING per daemon every 2 s is nothing to Redis.
constexpr Millis health_check_period{2000};
/// First pause after a failed connection attempt; it doubles up to store.reconnect_max_ms.
constexpr Millis reconnect_initial{100};
} // namespace

struct RedisClient::Waiter {
  explicit Waiter(asio::any_io_executor ex, SteadyTime deadline) : timer(ex, deadline) {}
  ClockTimer timer;
  bool granted = false;
};

RedisClient::RedisClient(asio::any_io_executor executor, StoreConfig config, const Clock& clock, Random& random)
    : executor_(executor), config_(std::move(config)), clock_(clock), random_(random), wake_(executor) {
  if (config_.redis->transport == RedisUrl::Transport::tls) {
    tls_.emplace(tls_client_context(config_.ca_file));
  }
}

void RedisClient::start(std::function<asio::awaitable<void>()> on_connected) {
  on_connected_ = std::move(on_connected);
  // Without the keeper the daemon still serves, alone: say so rather than die.
  asio::co_spawn(executor_, keep(), log_failure("redis " + where() + ": the connection keeper", "carrying on without Redis"));
}

void RedisClient::stop() {
  stopped_ = true;
  conn_.reset();
  wake_.cancel();
}

asio::awaitable<bool> RedisClient::enter(SteadyTime deadline) {
  if (!busy_) {
    busy_ = true;
    co_return true;
  }
  Waiter w(executor_, deadline);
  queue_.push_back(&w);
  co_await w.timer.async_wait(use_tuple);
  // leave() sets `granted` before cancelling, so a deadline that fires at the same moment
  // cannot lose the turn it was handed.
  if (!w.granted) queue_.erase(std::find(queue_.begin(), queue_.end(), &w));
  co_return w.granted;
}

void RedisClient::leave() {
  if (queue_.empty()) {
    busy_ = false;
    return;
  }
  Waiter* next = queue_.front();
  queue_.pop_front();
  next->granted = true;
  next->timer.cancel();
}

void RedisClient::drop(const std::shared_ptr<RedisConnection>& conn, const std::string& why) {
  if (conn_ != conn || !conn_) return;
  conn_.reset();
  if (!down_reported_) {
    spdlog::warn("redis {}: {}; carrying on alone and reconnecting", where(), why);
    down_reported_ = true;
  }
  wake_.cancel();
}

asio::awaitable<void> RedisClient::first_attempt() {
  auto self = shared_from_this();
  if (first_attempt_done_ || stopped_) co_return;
  // The attempt itself is bounded by store.timeout_ms; this bound only guards against a
  // keeper that never ran.
  ClockTimer t(executor_, clock_.now() + config_.timeout * 2);
  first_waiters_.push_back(&t);
  co_await t.async_wait(use_tuple);
  std::erase(first_waiters_, &t);
}

asio::awaitable<std::optional<RedisReply>> RedisClient::call(std::vector<std::string> args) {
  auto self = shared_from_this(); // keeps the client alive while this call is suspended
  if (!conn_ || stopped_) co_return std::nullopt;
  const SteadyTime deadline = clock_.now() + config_.timeout;
  if (!co_await enter(deadline)) co_return std::nullopt;
  std::shared_ptr<RedisConnection> conn = conn_;
  std::optional<RedisReply> reply;
  std::string failure;
  if (conn) {
    try {
      reply = co_await conn->command(args, deadline);
    } catch (const std::exception& e) { // RedisError, or a socket option refused
      failure = e.what();
    }
  }
  leave();
  if (!failure.empty()) drop(conn, failure);
  co_return reply;
}

asio::awaitable<void> RedisClient::keep() {
  auto self = shared_from_this();
  Millis backoff = std::min(reconnect_initial, config_.reconnect_max);
  unsigned attempts = 0;
  while (!stopped_) {
    if (!conn_) {
      ++attempts;
      std::string failure;
      try {
        auto c =
            co_await RedisConnection::open(executor_, *config_.redis, tls_ ? &*tls_ : nullptr, clock_.now() + config_.timeout);
        if (stopped_) co_return;
        conn_ = std::shared_ptr<RedisConnection>(std::move(c));
      } catch (const std::exception& e) { // RedisError, or a socket option refused
        failure = e.what();
      }
      if (!first_attempt_done_) {
        first_attempt_done_ = true;
        for (auto* t : first_waiters_) t->cancel();
      }
      if (conn_) {
        spdlog::info("redis {}: connected{}", where(), attempts > 1 ? fmt::format(" after {} attempts", attempts) : "");
        attempts = 0;
        down_reported_ = false;
        backoff = std::min(reconnect_initial, config_.reconnect_max);
        if (on_connected_) co_await on_connected_();
        continue;
      }
      if (!down_reported_) {
        spdlog::warn("redis {}: {}; carrying on alone and reconnecting", where(), failure);
        down_reported_ = true;
      } else {
        spdlog::debug("redis {}: reconnection attempt {} failed: {}", where(), attempts, failure);
      }
      // "Equal jitter": between half and all of the step, so a fleet that lost Redis
      // together does not come back in lockstep.
      const auto pause = Millis(static_cast<Millis::rep>(static_cast<double>(backoff.count()) * (0.5 + 0.5 * random_.uniform())));
      backoff = std::min(backoff * 2, config_.reconnect_max);
      wake_.expires_at(clock_.now() + pause);
      co_await wake_.async_wait(use_tuple);
      continue;
    }
    wake_.expires_at(clock_.now() + health_check_period);
    co_await wake_.async_wait(use_tuple);
    if (conn_ && !busy_ && !stopped_) {
      std::vector<std::string> ping{"PING"}; // built first: GCC 12 cannot keep a braced list across co_await
      auto reply = co_await call(std::move(ping));
      if (reply && reply->is_error()) spdlog::warn("redis {}: PING answered {}", where(), reply->str);
    }
  }
}

} // namespace cltoken

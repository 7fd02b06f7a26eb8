#pragma once
// The daemon's one connection to Redis, kept up in the background: connects at start,
// notices a dead connection within a health-check period, reconnects with capped
// exponential backoff, and runs `on_connected` after every (re)connection. Calls made
// while Redis is unreachable return at once with nothing, so the daemon carries on
// alone and no client waits on Redis longer than store.timeout_ms.
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include "async/clock_timer.hpp"

#include "core/random.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "store/redis_connection.hpp"

namespace cltoken {

class RedisClient : public std::enable_shared_from_this<RedisClient> {
public:
  /// Throws std::runtime_error when store.ca_file cannot be loaded.
  RedisClient(boost::asio::any_io_executor executor, StoreConfig config, const Clock& clock, Random& random);
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  /// Starts the background connection keeper.
  void start(std::function<boost::asio::awaitable<void>()> on_connected);
  void stop();

  /// One command, at most store.timeout_ms including the wait behind other commands.
  /// nullopt when Redis is not connected or the command failed (the connection is then
  /// dropped and the keeper reconnects). Redis error replies come back as replies.
  boost::asio::awaitable<std::optional<RedisReply>> call(std::vector<std::string> args);

  /// Until the first connection attempt has ended (at most store.timeout_ms after start):
  /// tokens loaded at start must not miss Redis only because it was still connecting.
  boost::asio::awaitable<void> first_attempt();

  [[nodiscard]] bool connected() const { return conn_ != nullptr; }
  [[nodiscard]] const std::string& where() const { return config_.redis->redacted; }

private:
  boost::asio::awaitable<void> keep();
  /// Commands go one at a time on the one connection: wait for our turn, or the deadline.
  boost::asio::awaitable<bool> enter(SteadyTime deadline);
  void leave();
  void drop(const std::shared_ptr<RedisConnection>& conn, const std::string& why);

  struct Waiter;
  boost::asio::any_io_executor executor_;
  StoreConfig config_;
  const Clock& clock_;
  Random& random_;
  std::optional<boost::asio::ssl::context> tls_;
  std::shared_ptr<RedisConnection> conn_;
  std::function<boost::asio::awaitable<void>()> on_connected_;
  ClockTimer wake_;
  bool busy_ = false;
  std::deque<Waiter*> queue_;
  bool stopped_ = false;
  bool down_reported_ = false;
  bool first_attempt_done_ = false;
  std::vector<ClockTimer*> first_waiters_;
};

} // namespace cltoken

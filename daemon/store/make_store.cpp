#include "store/make_store.hpp"

#include <spdlog/spdlog.h>

#include "store/file_session_store.hpp"
#include "store/file_store.hpp"
#include "store/redis_session_store.hpp"
#include "store/redis_store.hpp"

namespace cltoken {

Stores make_stores(boost::asio::any_io_executor executor, const Config& config, const Clock& clock, Random& random) {
  const bool sessions = config.customers.store;
  if (config.store.backend == "file") {
    spdlog::info("token store: state file {}{}", config.store.path,
                 sessions ? ", customer sessions in " + config.store.sessions_path : "");
    std::shared_ptr<SessionStore> kept = std::make_shared<NoSessionStore>();
    if (sessions) kept = std::make_shared<FileSessionStore>(config.store, config.customers, clock);
    return {std::make_shared<FileStore>(config.store, clock), kept};
  }
  if (config.store.backend == "redis") {
    // The lock must outlive the holder's whole fetch, or a second daemon would fetch too:
    // connect and request timeouts of the upstream, and one store operation to save.
    const Millis lock_ttl = config.upstream.connect_timeout + config.upstream.request_timeout + config.store.timeout;
    spdlog::info("token store: redis {} (fetch lock {} ms){}", config.store.redis->redacted, lock_ttl.count(),
                 sessions ? ", customer sessions too" : "");
    auto tokens = std::make_shared<RedisStore>(executor, config.store, lock_ttl, clock, random);
    if (!sessions) {
      tokens->start();
      return {tokens, std::make_shared<NoSessionStore>()};
    }
    auto shared = std::make_shared<RedisSessionStore>(executor, tokens->client(), config, lock_ttl, clock);
    tokens->start([weak = std::weak_ptr<RedisSessionStore>(shared)]() -> boost::asio::awaitable<void> {
      if (auto s = weak.lock()) co_await s->reconnected();
    });
    return {tokens, shared};
  }
  return {std::make_shared<MemoryStore>(), std::make_shared<NoSessionStore>()};
}

} // namespace cltoken

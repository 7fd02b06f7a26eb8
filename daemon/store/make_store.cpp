#include "store/make_store.hpp"

#include <spdlog/spdlog.h>

#include "store/file_store.hpp"
#include "store/redis_store.hpp"

namespace cltoken {

std::shared_ptr<TokenStore> make_store(boost::asio::any_io_executor executor, const Config& config, const Clock& clock,
                                       Random& random) {
  if (config.store.backend == "file") {
    spdlog::info("token store: state file {}", config.store.path);
    return std::make_shared<FileStore>(config.store, clock);
  }
  if (config.store.backend == "redis") {
    // The lock must outlive the holder's whole fetch, or a second daemon would fetch too:
    // connect and request timeouts of the upstream, and one store operation to save.
    const Millis lock_ttl = config.upstream.connect_timeout + config.upstream.request_timeout + config.store.timeout;
    spdlog::info("token store: redis {} (fetch lock {} ms)", config.store.redis->redacted, lock_ttl.count());
    auto store = std::make_shared<RedisStore>(executor, config.store, lock_ttl, clock, random);
    store->start();
    return store;
  }
  return std::make_shared<MemoryStore>();
}

} // namespace cltoken

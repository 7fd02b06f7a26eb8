#include "store/key_set_keeper.hpp"

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

#include "async/spawn.hpp"

namespace cltoken {

namespace asio = boost::asio;

asio::awaitable<std::optional<KeySetKeeper::Kept>> StoreKeySetKeeper::recall() {
  auto key = key_set_key(config_);
  if (!key) co_return std::nullopt; // nothing to seal with: the set is never kept
  auto stored = co_await store_.load_key_set(*key);
  if (!stored) co_return std::nullopt;
  if (auto why = stale_key_set(*stored, clock_.wall_now(), config_.upstream.jwks_max_age)) {
    spdlog::info("stored key set not used: {}; fetching it from the auth server", *why);
    co_return std::nullopt;
  }
  co_return Kept{std::move(stored->jwks), stored->fetched_at};
}

void StoreKeySetKeeper::keep(const std::string& jwks) {
  auto key = key_set_key(config_);
  if (!key) return;
  StoredKeySet set{key->auth_url, key->issuer, clock_.wall_now(), jwks};
  asio::co_spawn(executor_, store_.save_key_set(std::move(*key), std::move(set)),
                 log_failure("keeping the key set in the store"));
}

} // namespace cltoken

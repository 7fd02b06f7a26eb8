#pragma once
// The auth server's key set kept in the token store (docs/store.md, "The key set"): what
// SigningKeys asks for before its first fetch, and where it puts every set it fetches.
// A kept set is used only when it opens under this config's key, names this auth server
// and issuer, and is younger than upstream.jwks_max_age_s; anything else is logged and the
// set is fetched as if the store were empty.
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "store/token_store.hpp"
#include "upstream/signing_keys.hpp"

namespace cltoken {

class StoreKeySetKeeper final : public KeySetKeeper {
public:
  /// `store` and `config` (the running config, which a reload replaces in place) must
  /// outlive this object.
  StoreKeySetKeeper(boost::asio::any_io_executor executor, TokenStore& store, const Config& config, const Clock& clock)
      : executor_(std::move(executor)), store_(store), config_(config), clock_(clock) {}
  StoreKeySetKeeper(const StoreKeySetKeeper&) = delete;
  StoreKeySetKeeper& operator=(const StoreKeySetKeeper&) = delete;

  boost::asio::awaitable<std::optional<Kept>> recall() override;
  /// Saves in the background: a slow store never delays a verification.
  void keep(const std::string& jwks) override;

private:
  boost::asio::any_io_executor executor_;
  TokenStore& store_;
  const Config& config_;
  const Clock& clock_;
};

} // namespace cltoken

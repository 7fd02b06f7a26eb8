#pragma once
// Builds the stores that store.backend names (docs/store.md): the credentials' tokens and,
// unless [customers] store = false, the customer sessions'.
#include <memory>

#include <boost/asio/any_io_executor.hpp>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/random.hpp"
#include "store/session_store.hpp"
#include "store/token_store.hpp"

namespace cltoken {

struct Stores {
  std::shared_ptr<TokenStore> tokens;
  std::shared_ptr<SessionStore> sessions;
};

/// The stores for `config`, started (a redis store connects in the background; both share
/// its one connection). Throws std::runtime_error when they cannot be set up (store.ca_file
/// that does not load). Store settings are read once: a reload does not change them.
Stores make_stores(boost::asio::any_io_executor executor, const Config& config, const Clock& clock, Random& random);

} // namespace cltoken

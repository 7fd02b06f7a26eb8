#pragma once
// Builds the store that store.backend names (docs/store.md).
#include <memory>

#include <boost/asio/any_io_executor.hpp>

#include "core/random.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "store/token_store.hpp"

namespace cltoken {

/// The store for `config`, started (a redis store connects in the background). Throws
/// std::runtime_error when it cannot be set up (store.ca_file that does not load). Store
/// settings are read once: a reload does not change them.
std::shared_ptr<TokenStore> make_store(boost::asio::any_io_executor executor, const Config& config, const Clock& clock,
                                       Random& random);

} // namespace cltoken

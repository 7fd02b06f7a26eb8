#pragma once
// The auth server's signing keys held in memory: fetched from the configured auth server
// (never from a URL a token names), fetched again when a token names a kid the set does
// not hold, at most once per upstream.jwks_min_interval_s (core/jwks_gate.hpp). Callers
// that need keys while a fetch is in flight wait for that one fetch. With a keeper (the
// token store), the set kept there is asked for once, before the first fetch, and every
// set fetched is handed to it: a restart with a warm store needs no fetch.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include "async/clock_timer.hpp"

#include "core/clock.hpp"
#include "core/jwks.hpp"
#include "core/jwks_gate.hpp"
#include "upstream/jwks_source.hpp"

namespace cltoken {

/// Where key sets are kept across restarts (store/key_set_keeper.hpp over the token store).
class KeySetKeeper {
public:
  virtual ~KeySetKeeper() = default;
  struct Kept {
    std::string jwks;    ///< the JWKS document
    WallTime fetched_at; ///< when the auth server published it to a daemon
  };
  /// The set kept earlier, when it is still fit to trust (sealed for this auth server,
  /// unaltered, not too old); nullopt otherwise. Never throws for what it finds.
  virtual boost::asio::awaitable<std::optional<Kept>> recall() = 0;
  /// A set just fetched from the auth server (its JWKS document): keep it.
  virtual void keep(const std::string& jwks) = 0;
};

class SigningKeys {
public:
  /// Called with "ok", "failed" or "refused" (a set without a usable key) per request.
  using CountFn = std::function<void(const char* outcome)>;

  SigningKeys(boost::asio::any_io_executor executor, JwksSource& source, const Clock& clock, Seconds min_interval,
              Seconds max_age);
  SigningKeys(const SigningKeys&) = delete;
  SigningKeys& operator=(const SigningKeys&) = delete;

  void on_request(CountFn f) { count_ = std::move(f); }
  /// Must outlive this object (or be replaced before it goes).
  void set_keeper(KeySetKeeper* k) { keeper_ = k; }
  void set_min_interval(Seconds s) { gate_.set_min_interval(s); }
  /// A set older than this is fetched again before it verifies anything more (upstream.jwks_max_age_s).
  void set_max_age(Seconds s) { gate_.set_max_age(s); }

  /// The key set once it holds `kid` and is not older than max_age, fetching it when
  /// allowed (waiting at most until the deadline). The set may still lack `kid`: the caller
  /// then refuses the token. A stale set that cannot be fetched again is used meanwhile.
  boost::asio::awaitable<std::shared_ptr<const KeySet>> keys_for(std::string kid, SteadyTime deadline);
  /// What keys_for() answers at once, without I/O: the set when it holds `kid` and needs
  /// no fetch first; nullptr when keys_for() would fetch or wait.
  [[nodiscard]] std::shared_ptr<const KeySet> held_for(std::string_view kid) const;
  /// The set as held now (empty before the first fetch), without I/O.
  [[nodiscard]] std::shared_ptr<const KeySet> current() const { return keys_; }
  /// Drops every key (the auth server changed); the keeper is asked again.
  void reset();
  /// When the key set may be fetched again (now when it may).
  [[nodiscard]] SteadyTime next_fetch() const { return gate_.next_fetch(clock_.now()); }
  /// Why the last fetch failed; empty after a good one.
  [[nodiscard]] const std::string& last_error() const { return last_error_; }

private:
  /// The one update in flight: the keeper's set (once), then the auth server's if `kid` is
  /// still missing and the gate allows. Wakes the waiters at the end.
  boost::asio::awaitable<void> update(std::string kid, bool recall, bool stale);
  boost::asio::awaitable<void> recall_kept();
  boost::asio::awaitable<void> fetch();

  boost::asio::any_io_executor executor_;
  JwksSource& source_;
  const Clock& clock_;
  JwksGate gate_;
  std::shared_ptr<const KeySet> keys_;
  bool in_flight_ = false;
  std::vector<ClockTimer*> waiters_;
  std::string last_error_;
  CountFn count_;
  KeySetKeeper* keeper_ = nullptr;
  bool recalled_ = false; ///< the keeper was asked (once per auth server)
};

} // namespace cltoken

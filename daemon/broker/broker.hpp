#pragma once
// The broker runs every credential's CredentialState with real timers: one scheduler
// decides which credential may call the upstream next (priority + the global budget),
// fetches run as tracked coroutines, and clients wait for a fetch with a deadline.
// Single-threaded: everything here runs on one strand of the io_context.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/random.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/credential_state.hpp"
#include "core/documents.hpp"
#include "core/fetch_schedule.hpp"
#include "core/rate_budget.hpp"
#include "core/router.hpp"
#include "store/token_store.hpp"
#include "upstream/upstream.hpp"

namespace cltoken {

class Broker {
public:
  Broker(boost::asio::any_io_executor executor, const Clock& clock, Upstream& upstream, Random& random, const Config& config);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  /// Where tokens are kept beyond memory (docs/store.md); must outlive the broker. Call
  /// before start(). Default: a MemoryStore, which keeps nothing.
  void set_store(TokenStore& store) { store_ = &store; }

  /// Starts the scheduler; every credential is fetched as soon as the budget allows.
  void start();
  /// Stops scheduling; in-flight fetches are left to finish or be cancelled with the context.
  void stop();

  /// Applies a new config: credentials whose identity is unchanged keep their token,
  /// removed ones are dropped (nothing is revoked), new ones are fetched.
  void apply(const Config& config);

  /// GET /v1/tokens/{name}: a token document, or 503/504-style error responses.
  /// The caller has checked the ACL.
  boost::asio::awaitable<Response> get_token(std::string name, std::optional<Seconds> min_ttl, SteadyTime deadline);
  /// POST /v1/tokens/{name}/invalidate.
  boost::asio::awaitable<Response> invalidate(std::string name, Secret reported, SteadyTime deadline);
  /// POST /v1/tokens/{name}/revoke.
  boost::asio::awaitable<Response> revoke(std::string name, SteadyTime deadline);

  [[nodiscard]] const CredentialConfig* credential(std::string_view name) const;
  /// Whether `token` is the one held for credential `name` (reporting it invalid would
  /// cost an upstream request).
  [[nodiscard]] bool holds(std::string_view name, const Secret& token) const;
  /// Every configured credential, in name order; valid until the next apply().
  [[nodiscard]] std::vector<const CredentialConfig*> credentials() const;
  [[nodiscard]] StatusView status_view();
  /// The same, into a view the caller keeps: its credential list's storage is reused, so
  /// a once-a-second reader (the systemd heartbeat) allocates nothing for 1,000 credentials.
  void status_view(StatusView& into);
  /// Names of credentials without a valid token (empty = ready).
  [[nodiscard]] std::vector<std::string> not_ready();

  /// What the systemd watchdog checks: that the scheduler wakes when it said it would and
  /// that no fetch outlives its deadlines (daemon/systemd/watchdog.hpp).
  struct Progress {
    bool running = false;
    SteadyTime next_wake{};                  ///< when the scheduler is due to run again
    std::optional<SteadyTime> oldest_fetch;  ///< start of the oldest fetch still in flight
  };
  [[nodiscard]] Progress progress() const;

  // The shared upstream budget, for other flows that call the auth server (customer
  // sessions): one budget for the whole host, whoever asks.
  /// Takes a slot when one is free now; false when over budget or paused after a 429.
  bool take_upstream_slot();
  /// Gives back a slot taken with take_upstream_slot() (its window runs from now).
  void release_upstream_slot();
  /// Slots free now (0 while paused after a 429).
  [[nodiscard]] unsigned upstream_slots_left();
  /// When a slot is expected to be free (now when available).
  [[nodiscard]] SteadyTime next_upstream_slot();
  /// A 429 from the auth server, seen by another flow: pauses every upstream request.
  void upstream_rate_limited(const UpstreamFailure& f, const std::string& what);

  struct Entry;

private:
  boost::asio::awaitable<void> schedule();
  boost::asio::awaitable<void> fetch(std::shared_ptr<Entry> e);
  void start_fetch(const std::shared_ptr<Entry>& e, SteadyTime now);
  /// Warns once when credentials start queueing for the budget, notes when they stop.
  void log_queue(const FetchPlan& plan, SteadyTime now);
  /// A 429 (Retry-After, else backoff) pauses every upstream request.
  void pause_for_rate_limit(const UpstreamFailure& f, SteadyTime now, const std::string& name);
  /// The upstream handed back a token a client reported refused: revoke it (on a budget
  /// slot) so that the next request brings a new one. Returns whether it was revoked.
  boost::asio::awaitable<bool> revoke_reported(const std::shared_ptr<Entry>& e);
  /// The 503 for a client that cannot have a token: what the upstream did, and when to
  /// come back (Retry-After).
  Response unavailable(const Entry& e, SteadyTime now);
  boost::asio::awaitable<Response> serve(std::shared_ptr<Entry> e, Seconds min_ttl, SteadyTime deadline);
  /// Waits until the entry changes or the deadline passes. True when woken by a change.
  boost::asio::awaitable<bool> wait_change(Entry& e, SteadyTime deadline);
  void notify(Entry& e);
  void poke();
  std::shared_ptr<Entry> find(std::string_view name) const;
  // Token store hooks (docs/store.md).
  /// Loads stored tokens of credentials not yet asked (all at start, new ones after a reload).
  boost::asio::awaitable<void> restore();
  /// For a shared store: false while the fleet is asked whether this fetch is needed
  /// (start_fetch() uses the answer up).
  bool fetch_cleared(Entry& e, SteadyTime now);
  boost::asio::awaitable<void> consult(std::shared_ptr<Entry> e);
  void save_token(const std::shared_ptr<Entry>& e);
  void forget_token(const std::shared_ptr<Entry>& e);
  Response token_response(const Entry& e);

  boost::asio::any_io_executor executor_;
  const Clock& clock_;
  Upstream& upstream_;
  Random& random_;
  RefreshPolicy policy_;
  Seconds min_ttl_;
  Millis upstream_timeout_; ///< upstream.request_timeout_ms: the longest a fetch can take
  std::string auth_url_;
  RateBudget budget_;
  MemoryStore memory_store_;
  TokenStore* store_ = &memory_store_;
  unsigned rate_limit_strikes_ = 0;
  std::string rate_limit_message_; ///< what the last 429 said, for the 503s during its pause
  std::size_t queued_logged_ = 0; ///< credentials over budget at the last plan
  std::map<std::string, std::shared_ptr<Entry>, std::less<>> entries_;
  boost::asio::steady_timer wake_;
  bool running_ = false;
  std::size_t fetches_in_flight_ = 0; ///< so the end of a burst of fetches can give memory back
  SteadyTime next_wake_{};
  WallTime started_at_;
  SteadyTime started_steady_;
};

} // namespace cltoken

#pragma once
// The Asio driver of the TokenScheduler (core/token_scheduler.hpp): it turns the
// scheduler's actions into upstream requests, store calls, one wake-up timer and answers
// to waiting clients, and their results back into events. It decides nothing.
// Single-threaded: everything here runs on the io_context's one thread.
#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "async/answer_box.hpp"
#include "async/wake_loop.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/documents.hpp"
#include "core/random.hpp"
#include "core/token_scheduler.hpp"
#include "core/upstream_budget.hpp"
#include "store/token_store.hpp"
#include "upstream/upstream.hpp"

namespace cltoken {

/// What an admin revoke came to.
struct RevokeAnswer {
  enum class Kind { revoked, unknown, unavailable } kind = Kind::unknown;
  TokenAnswer refused; ///< unavailable: why, and when to come back
};

class Broker {
public:
  Broker(boost::asio::any_io_executor executor, const Clock& clock, Upstream& upstream, Random& random, UpstreamBudget& budget,
         const Config& config);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  /// Where tokens are kept beyond memory (docs/store.md); must outlive the broker. Call
  /// before start(). Default: a MemoryStore, which keeps nothing.
  void set_store(TokenStore& store);

  /// Starts the scheduler; every credential is fetched as soon as the budget allows.
  void start();
  /// Stops scheduling: clients still waiting are answered now; requests in flight end
  /// with the context.
  void stop();
  /// Applies a new config (TokenScheduler::apply).
  void apply(const Config& config);

  /// GET /v1/tokens/{name}, for `peer`. The caller has checked the ACL.
  boost::asio::awaitable<TokenAnswer> get_token(std::string name, std::optional<Seconds> min_ttl, SteadyTime deadline,
                                                std::optional<uid_t> peer = std::nullopt);
  /// get_token in two halves, so that a token held in memory is served without a
  /// coroutine (the serving fast path, docs/architecture.md): ask_token() answers now (a
  /// token served comes as `held`, to be written before this event ends), or parks the
  /// client; a parked client (neither `answer` nor `held`) must be awaited with
  /// wait_token(waiter) at once, before the event loop runs anything else.
  TokenScheduler::Asked ask_token(std::string_view name, std::optional<Seconds> min_ttl, SteadyTime deadline,
                                  std::optional<uid_t> peer, Now now);
  boost::asio::awaitable<TokenAnswer> wait_token(std::uint64_t waiter);
  /// The steady and wall clocks, read together.
  [[nodiscard]] Now now() const { return clock_.both(); }
  /// POST /v1/tokens/{name}/invalidate.
  boost::asio::awaitable<TokenAnswer> invalidate(std::string name, Secret reported, SteadyTime deadline,
                                                 std::optional<uid_t> peer = std::nullopt);
  /// POST /v1/tokens/{name}/refresh (admin): fetch now (TokenScheduler::refresh).
  boost::asio::awaitable<TokenAnswer> refresh(std::string name, SteadyTime deadline, std::optional<uid_t> peer = std::nullopt);
  /// POST /v1/tokens/{name}/revoke (bounded by the upstream client's own deadlines).
  boost::asio::awaitable<RevokeAnswer> revoke(std::string name, std::optional<uid_t> peer = std::nullopt);

  [[nodiscard]] const CredentialConfig* credential(std::string_view name) const { return scheduler_.credential(name); }
  [[nodiscard]] bool holds(std::string_view name, const Secret& token) const { return scheduler_.holds(name, token); }
  /// Every configured credential, in name order; valid until the next apply().
  [[nodiscard]] std::vector<const CredentialConfig*> credentials() const { return scheduler_.credentials(); }
  [[nodiscard]] StatusView status_view();
  /// The same, into a view the caller keeps: its credential list's storage is reused, so
  /// a once-a-second reader (the systemd heartbeat) allocates nothing for 1,000 credentials.
  void status_view(StatusView& into);
  /// Names of credentials without a valid token (empty = ready).
  [[nodiscard]] std::vector<std::string> not_ready() const { return scheduler_.not_ready(clock_.now()); }

  /// What the systemd watchdog checks: that the scheduler wakes when it said it would and
  /// that no fetch outlives its deadlines (daemon/systemd/watchdog.hpp).
  struct Progress {
    bool running = false;
    SteadyTime next_wake{};                 ///< when the scheduler is due to run again
    std::optional<SteadyTime> oldest_fetch; ///< start of the oldest fetch still in flight
  };
  [[nodiscard]] Progress progress() const;

private:
  /// Parks a client until the scheduler answers it.
  boost::asio::awaitable<TokenAnswer> await_answer(TokenScheduler::Asked asked);
  /// Performs every action the scheduler decided, and re-arms the wake-up.
  void drive();
  void perform(SchedulerAction& a);
  boost::asio::awaitable<void> fetch(CredentialRef ref, CredentialConfig config);
  boost::asio::awaitable<void> revoke_reported(CredentialRef ref, CredentialConfig config, Secret token);
  boost::asio::awaitable<void> load(CredentialRef ref, CredentialConfig config);
  boost::asio::awaitable<void> ask_fleet(CredentialRef ref, CredentialConfig config, SteadyTime newer_than);
  boost::asio::awaitable<void> save(CredentialConfig config, std::string auth_url, CachedToken token);
  boost::asio::awaitable<void> forget(CredentialConfig config, std::string auth_url);
  /// Runs `task` after the current event is fully handled, logging a failure as `what`.
  void spawn(boost::asio::awaitable<void> task, std::string what);

  boost::asio::any_io_executor executor_;
  const Clock& clock_;
  Upstream& upstream_;
  TokenScheduler scheduler_;
  MemoryStore memory_store_;
  TokenStore* store_ = &memory_store_;
  AnswerBox<TokenAnswer> answers_;
  WakeLoop wake_;
  std::size_t fetches_ = 0; ///< so the end of a burst of fetches can give memory back
  WallTime started_at_;
  SteadyTime started_steady_;
};

} // namespace cltoken

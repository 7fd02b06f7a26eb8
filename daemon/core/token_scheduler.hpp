#pragma once
// Every credential's token cache and the order in which they call the upstream, as one
// state machine without I/O: events go in with the time as an argument (a client asks, a
// fetch finished, the store answered, a wake-up, a reload), actions come out (start a
// fetch, answer a waiting client, write the store) together with the time it next needs
// to be woken. daemon/broker turns the actions into timers and requests; the unit tests
// run this very class through hours of virtual time (docs/architecture.md).
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/credential_state.hpp"
#include "core/documents.hpp"
#include "core/fetch_schedule.hpp"
#include "core/random.hpp"
#include "core/upstream_budget.hpp"

namespace cltoken {

/// Why a client gets no token now; the server maps each to a status and error code.
enum class Unavailable {
  rejected,     ///< the auth server refuses the credential itself
  rate_limited, ///< every request paused after a 429
  queued,       ///< waiting for its turn in the upstream budget
  no_answer,    ///< a request is in flight past the client's deadline
  failing,      ///< the last request failed (or none was made yet); backing off
  stopping,     ///< the daemon is shutting down
  budget,       ///< (revoke) no budget slot for the upstream request now
};

/// What a client asking for a credential's token is told.
/// An admin refresh is answered without the token: `refreshed` (a fetch brought a token) or
/// `kept` (nothing fetched: the upstream would hand back the token held).
struct TokenAnswer {
  enum class Kind { served, unavailable, unknown, refreshed, kept };
  Kind kind = Kind::unknown;
  std::string document; ///< served: the token document
  Unavailable why = Unavailable::failing;
  std::string message; ///< unavailable, kept: a sentence for the client, never a secret
  Seconds retry_after{0};
  Seconds expires_in{0}; ///< refreshed, kept: what the held token has left

  static TokenAnswer unknown() { return {}; }
  static TokenAnswer served(std::string document) { return {Kind::served, std::move(document), {}, {}, {}, {}}; }
  static TokenAnswer unavailable(Unavailable why, std::string message, Seconds retry_after) {
    return {Kind::unavailable, {}, why, std::move(message), retry_after, {}};
  }
  static TokenAnswer refreshed(Seconds expires_in) { return {Kind::refreshed, {}, {}, {}, {}, expires_in}; }
  static TokenAnswer kept(std::string message, Seconds expires_in) {
    return {Kind::kept, {}, {}, std::move(message), {}, expires_in};
  }
};

/// Which credential an action is about: its serial survives no reload that replaces it, so
/// an answer for a credential since removed or replaced is recognised and dropped.
struct CredentialRef {
  std::uint64_t serial = 0;
  std::string name;
};

namespace action {
/// Request a token (client_credentials) for the credential; then fetch_done().
struct Fetch {
  CredentialRef credential;
};
/// The upstream handed back a token a client reported refused: revoke it; then
/// reported_revoked(). The fetch stays in flight meanwhile.
struct RevokeReported {
  CredentialRef credential;
  Secret token;
};
/// Load a stored token (first look at a credential); then store_loaded().
struct Load {
  CredentialRef credential;
};
/// Shared store: ask the fleet for a token newer than `newer_than` before fetching; then
/// fleet_answered().
struct AskFleet {
  CredentialRef credential;
  SteadyTime newer_than;
};
/// Keep this newly obtained token in the store.
struct Save {
  CredentialRef credential;
  CachedToken token;
};
/// The token was revoked or reported invalid: stored copies must not come back.
struct Forget {
  CredentialRef credential;
};
/// A waiting client's answer.
struct Answer {
  std::uint64_t waiter;
  TokenAnswer answer;
};
} // namespace action
using SchedulerAction = std::variant<action::Fetch, action::RevokeReported, action::Load, action::AskFleet, action::Save,
                                     action::Forget, action::Answer>;

/// What the store can do, which decides which store actions are asked for.
struct StoreMode {
  bool load = false;   ///< tokens survive a restart: load before the first fetch
  bool shared = false; ///< daemons share it: ask the fleet before each fetch
};

class TokenScheduler {
public:
  TokenScheduler(const Config& config, UpstreamBudget& budget, Random& random, SteadyTime now);
  ~TokenScheduler();
  TokenScheduler(const TokenScheduler&) = delete;
  TokenScheduler& operator=(const TokenScheduler&) = delete;

  void set_store(StoreMode mode) { store_ = mode; }

  // ---- events ------------------------------------------------------------------------
  /// A client (`peer`) wants a token for `name` with at least `min_ttl` left (the config's
  /// refresh.min_ttl at least) by `deadline`. Answered now, or parked: then `waiter` is set
  /// and an action::Answer for it comes by the deadline.
  struct Asked {
    Asked(std::optional<TokenAnswer> a, std::uint64_t w) : answer(std::move(a)), waiter(w) {}
    explicit Asked(HeldBody h) : held(h) {}
    std::optional<TokenAnswer> answer;
    std::uint64_t waiter = 0;
    std::optional<HeldBody> held; ///< ask_held() only: the token served as pieces, no `answer`
  };
  Asked ask(Now now, std::string_view name, std::optional<Seconds> min_ttl, SteadyTime deadline, std::optional<uid_t> peer);
  /// ask() for a caller that writes the answer before this event ends (the serving fast
  /// path): a token served comes as `held`, pieces of the document the scheduler holds
  /// around the token's own bytes, instead of a copy in `answer`.
  Asked ask_held(Now now, std::string_view name, std::optional<Seconds> min_ttl, SteadyTime deadline, std::optional<uid_t> peer);
  /// A client saw `reported` refused by the API: a new token if it is the current one
  /// (many reports cost one request), else the current one. Answered as ask().
  Asked invalidate(Now now, std::string_view name, const Secret& reported, SteadyTime deadline, std::optional<uid_t> peer);
  /// An admin wants `name` fetched now, cutting short any backoff (but not a 429 pause or
  /// the budget). Answered as ask(), never with the token: at once when nothing is to be
  /// fetched, else with `refreshed` or why not once the fetch ends, or by the deadline.
  Asked refresh(Now now, std::string_view name, SteadyTime deadline, std::optional<uid_t> peer);
  /// The answer to an action::Fetch, sent at the time the action was taken.
  void fetch_done(Now now, const CredentialRef& c, UpstreamResult result);
  /// The answer to an action::RevokeReported (`failure` empty: revoked).
  void reported_revoked(Now now, const CredentialRef& c, const std::optional<UpstreamFailure>& failure);
  /// The answer to an action::Load.
  void store_loaded(Now now, const CredentialRef& c, std::optional<CachedToken> token);
  /// The answer to an action::AskFleet.
  void fleet_answered(Now now, const CredentialRef& c, std::optional<CachedToken> token);
  /// The time given by next_wake() (or any later time) has come.
  void wake(Now now);
  /// A new config: credentials whose identity is unchanged keep their token, removed ones
  /// are dropped (their waiters answered), new ones are fetched.
  void apply(Now now, const Config& config);
  /// Shutting down: every waiter is answered, nothing new starts.
  void stop(Now now);

  /// Admin revoke, in two steps around the upstream call: begin() says what to revoke (or
  /// why not now); end() records the upstream's answer.
  struct RevokeStart {
    enum class Kind { unknown, nothing, refused, revoke } kind = Kind::unknown;
    std::optional<CredentialRef> credential;
    std::optional<Secret> token;               ///< revoke: the token to revoke
    std::optional<TokenAnswer> refused_answer; ///< refused: why (unavailable)
  };
  RevokeStart revoke_begin(Now now, std::string_view name, std::optional<uid_t> peer);
  /// Returns an unavailable answer when the upstream refused, nullopt when revoked.
  std::optional<TokenAnswer> revoke_end(Now now, const CredentialRef& c, const Secret& token,
                                        const std::optional<UpstreamFailure>& failure);

  // ---- actions -----------------------------------------------------------------------
  /// The actions decided since the last call, in order.
  [[nodiscard]] std::vector<SchedulerAction> take_actions();
  /// When wake() is next needed (SteadyTime::max(): only an event can change anything).
  [[nodiscard]] SteadyTime next_wake() const { return next_wake_; }

  // ---- views -------------------------------------------------------------------------
  [[nodiscard]] const CredentialConfig* credential(std::string_view name) const;
  [[nodiscard]] std::vector<const CredentialConfig*> credentials() const;
  /// Whether `token` is the one held for `name` (reporting it would cost a request).
  [[nodiscard]] bool holds(std::string_view name, const Secret& token) const;
  /// The state machine of one credential, for tests and checks.
  [[nodiscard]] const CredentialState* state(std::string_view name) const;
  /// Clients parked for `name`.
  [[nodiscard]] std::size_t waiting(std::string_view name) const;
  /// Fills the status document's view; reuses the credential list's storage.
  void status_view(StatusView& into, SteadyTime now);
  [[nodiscard]] std::vector<std::string> not_ready(SteadyTime now) const;
  /// Start of the oldest fetch in flight, if any (the watchdog's check).
  [[nodiscard]] std::optional<SteadyTime> oldest_fetch() const;
  [[nodiscard]] UpstreamBudget& budget() { return budget_; }
  [[nodiscard]] const std::string& auth_url() const { return auth_url_; }

  struct Entry;

private:
  Entry* find(std::string_view name) const;
  Entry* find(const CredentialRef& c) const;
  /// Parks or answers a client after the entry decided.
  /// `held_ok`: a token served may come as pieces (ask_held()).
  Asked serve(Now now, Entry& e, Seconds min_ttl, SteadyTime deadline, std::optional<uid_t> peer, bool caused,
              bool held_ok = false);
  /// Answers parked clients that can be answered now (after a change, or at their deadline).
  void settle(Now now, Entry& e, bool changed);
  /// The scheduling pass: starts what the budget allows, plans the next wake-up. Only
  /// wake() runs it: events ask for it with poke(), so that everything that happens at
  /// one instant (a burst of clients, several answers) is planned together.
  void pass(Now now);
  void poke(SteadyTime now) {
    if (running_) next_wake_ = std::min(next_wake_, now);
  }
  void start_fetch(Entry& e, SteadyTime now);
  [[nodiscard]] TokenAnswer served(Now now, Entry& e);
  [[nodiscard]] TokenAnswer unavailable(const Entry& e, SteadyTime now) const;
  /// An admin refresh's answer once the fetch it asked for has ended.
  [[nodiscard]] TokenAnswer refresh_ended(const Entry& e, SteadyTime now) const;
  void emit(SchedulerAction a) { actions_.push_back(std::move(a)); }
  void rate_limited(const UpstreamFailure& f, SteadyTime now, const std::string& name);
  /// Warns once when credentials start queueing for the budget, notes when they stop.
  void log_queue(const FetchPlan& plan, SteadyTime now);

  UpstreamBudget& budget_;
  Random& random_;
  RefreshPolicy policy_;
  Seconds min_ttl_;
  Millis upstream_timeout_;
  std::string auth_url_;
  StoreMode store_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_;
  std::vector<SchedulerAction> actions_;
  std::uint64_t next_serial_ = 1;
  std::uint64_t next_waiter_ = 1;
  std::size_t fetches_in_flight_ = 0;
  std::size_t queued_logged_ = 0;
  SteadyTime next_wake_{};
  bool running_ = true;
};

} // namespace cltoken

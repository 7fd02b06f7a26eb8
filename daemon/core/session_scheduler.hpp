#pragma once
// Customer sessions (docs/customer-sessions.md) as one state machine without I/O, like the
// TokenScheduler: events go in with the time as an argument (a login, a read, a logout, an
// upstream answer, a wake-up, a reload), actions come out (ask the auth server for a token,
// revoke, verify an adopted token, answer a waiting client) with the time it next needs to
// be woken. It owns the session table, the per-uid login limit and who waits for which
// refresh; it takes its upstream slots from the host's shared UpstreamBudget.
// daemon/sessions drives it; the unit tests run it in virtual time.
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/documents.hpp"
#include "core/jwt_verify.hpp"
#include "core/peer_rate_limiter.hpp"
#include "core/random.hpp"
#include "core/refresh_policy.hpp"
#include "core/session_answer.hpp"
#include "core/session_request.hpp"
#include "core/session_storage.hpp"
#include "core/session_table.hpp"
#include "core/upstream_budget.hpp"
#include "core/upstream_response.hpp"

namespace cltoken {

namespace session_action {
/// Ask the auth server for a token (a login or a refresh); then token_answered(id, ...).
struct RequestToken {
  std::uint64_t id;
  TokenRequest request;
};
/// Revoke `tokens` in order, stopping at the first failure; then revoked(id, ...).
struct Revoke {
  std::uint64_t id;
  std::string client_id;
  std::optional<Secret> client_secret;
  std::vector<Secret> tokens;
};
/// Check an adopted token (signature and claims) by `deadline`; then verified(id, ...).
struct Verify {
  std::uint64_t id;
  Secret token;
  TokenExpectations expect;
  SteadyTime deadline;
};
/// A waiting client's answer.
struct Answer {
  std::uint64_t op;
  SessionAnswer answer;
};

// The store's part (only with sessions in a store; the fleet's part only when it is shared).
/// Look for a session this daemon does not hold; then found(id, ...).
struct Find {
  std::uint64_t id;
  std::string credential;
  SessionKey key;
};
/// Before refreshing: does another daemon refresh it, or has it? Then fleet_answered(id, ...).
struct AskFleet {
  std::uint64_t id;
  std::string credential;
  SessionKey key;
  std::uint64_t generation;
};
/// Keep this session's current record; then saved(key, record, ..., op).
struct Save {
  SessionKey key;
  SessionRecord record;
  std::uint64_t op = 0; ///< a login answered once the store has it (0: none)
};
/// A logout: end the session for every daemon first; then store_ended(id, newest record).
struct EndInStore {
  std::uint64_t id;
  std::string credential;
  SessionKey key;
};
/// Gone from memory without a logout; `dead`: its refresh token is refused or expired.
struct Drop {
  std::string credential;
  SessionKey key;
  bool dead;
};
} // namespace session_action
using SessionAction = std::variant<session_action::RequestToken, session_action::Revoke, session_action::Verify,
                                   session_action::Answer, session_action::Find, session_action::AskFleet, session_action::Save,
                                   session_action::EndInStore, session_action::Drop>;

class SessionScheduler {
public:
  SessionScheduler(const Config& config, UpstreamBudget& budget, Random& random, SteadyTime now);
  SessionScheduler(const SessionScheduler&) = delete;
  SessionScheduler& operator=(const SessionScheduler&) = delete;

  // ---- events ------------------------------------------------------------------------
  /// A client's request: answered now, or `op` gets an action::Answer later (by its
  /// deadline for reads and logouts waiting for a refresh; logins and revokes are bounded
  /// by the upstream client's own deadlines).
  struct Started {
    std::optional<SessionAnswer> answer;
    std::uint64_t op = 0;
  };
  /// POST .../sessions with `body` (wiped). The caller checked the credential is a sales
  /// channel `owner` may use.
  Started create(Now now, const CredentialConfig& credential, uid_t owner, std::string body, SteadyTime deadline);
  /// GET .../sessions/{handle}: `key` is the handle's session_key().
  Started read(Now now, std::string_view credential, uid_t owner, const SessionKey& key, std::optional<Seconds> min_ttl,
               SteadyTime deadline);
  /// DELETE .../sessions/{handle}.
  Started end(Now now, const CredentialConfig& credential, uid_t owner, const SessionKey& key, SteadyTime deadline);
  /// The answer to an action::RequestToken.
  void token_answered(Now now, std::uint64_t id, UpstreamResult result);
  /// The answer to an action::Revoke (`failure` empty: all revoked).
  void revoked(Now now, std::uint64_t id, std::optional<UpstreamFailure> failure);
  /// The answer to an action::Verify: why the token is refused, or nullopt when it verifies.
  void verified(Now now, std::uint64_t id, std::optional<std::string> refused);
  /// The time given by next_wake() (or any later time) has come.
  void wake(Now now);
  /// New limits and policy; sessions of credentials that are gone, no longer sales
  /// channels, or whose identity or auth server changed are dropped.
  void apply(Now now, const Config& config);
  /// Shutting down: clients waiting for a refresh are answered now, the sweep ends.
  void stop(Now now);

  // ---- the store's events (docs/customer-sessions.md, "Sessions in the store") ----------
  /// The sessions a store kept, at start (before any client's request).
  void loaded(Now now, std::vector<KeptSession> sessions);
  /// The answer to an action::Find.
  void found(Now now, std::uint64_t id, SessionLookup lookup);
  /// The answer to an action::AskFleet.
  void fleet_answered(Now now, std::uint64_t id, FleetRefresh answer);
  /// What became of an action::Save of `record`.
  void saved(Now now, const SessionKey& key, SessionRecord record, SessionSaved outcome, std::uint64_t op = 0);
  /// The answer to an action::EndInStore: the newest record the store held, if any.
  void store_ended(Now now, std::uint64_t id, std::optional<SessionRecord> newest);
  /// Sessions ended (logged out) on other daemons.
  void ended_elsewhere(Now now, const std::vector<SessionKey>& keys);
  /// A shared store is reachable again: sessions it could not keep are saved now.
  void store_available(Now now);

  // ---- actions -----------------------------------------------------------------------
  [[nodiscard]] std::vector<SessionAction> take_actions();
  /// When wake() is next needed (SteadyTime::max(): only an event can change anything).
  [[nodiscard]] SteadyTime next_wake() const;

  // ---- views -------------------------------------------------------------------------
  [[nodiscard]] CustomersView view() const;
  [[nodiscard]] const SessionTable& table() const { return table_; }
  /// Clients waiting for a refresh, and upstream calls in flight.
  [[nodiscard]] std::size_t waiting() const { return waiters_.size(); }
  [[nodiscard]] std::size_t in_flight() const {
    return logins_.size() + refreshes_.size() + revokes_.size() + finds_.size() + ending_.size() + creating_.size();
  }
  /// The sales channel `name` as configured now, or nullptr.
  [[nodiscard]] const CredentialConfig* credential_config(const std::string& name) const;
  /// Sessions in a store at all, and one shared by a fleet.
  [[nodiscard]] bool storing() const { return storing_; }
  [[nodiscard]] bool shared() const { return shared_; }

  /// Store look-ups one uid may have in flight, and all uids together: a peer asking for
  /// handles that exist nowhere costs the store one look-up each, never more than these.
  static constexpr std::size_t max_finds_per_peer = 64;
  static constexpr std::size_t max_finds = 1024;

private:
  /// A login between its start and its upstream answer (or its adopted token's check).
  struct Login {
    std::string credential;
    uid_t owner;
    SteadyTime sent;
    std::optional<CustomerSession> adopted; ///< waiting for verified()
  };
  /// A read or a logout waiting for the session's refresh to end, or for the store to
  /// find a session this daemon does not hold.
  struct Waiter {
    bool logout = false;
    SessionKey key;
    uid_t owner;
    std::string credential;
    SteadyTime deadline;
    std::string client_id; ///< logout: the credential's, as it was when the client asked
    std::optional<Secret> client_secret;
    std::optional<Seconds> min_ttl; ///< a read's
    bool finding = false;           ///< waiting for an action::Find
  };
  struct Refresh {
    SessionKey key;
    std::string credential;
    SteadyTime sent;
    uid_t owner;               ///< to save what it brings when the session is gone from memory meanwhile
    std::uint64_t generation;  ///< of the tokens it refreshes
    bool asking_fleet = false; ///< waiting for fleet_answered(), no budget slot taken yet
    std::optional<uid_t> peer; ///< whose read made it happen: charged for the request
  };
  struct Revoking {
    SessionKey key;
    std::string credential;
    bool orphan = false; ///< tokens no session holds any more: nobody waits for the answer
  };
  /// A look-up in flight, for one key.
  struct Finding {
    SessionKey key;
    uid_t peer; ///< who asked first: counted against max_finds_per_peer
  };

  // Logins (session_login.cpp).
  Started adopt(Now now, std::uint64_t op, const CredentialConfig& cred, uid_t owner, SessionRequest& req, SteadyTime deadline);
  Started request_login(Now now, std::uint64_t op, const CredentialConfig& cred, uid_t owner, SessionRequest& req);
  void login_answered(Now now, std::uint64_t id, UpstreamResult result);
  /// The new session under a new handle: the 201 answer to `op`, once a shared store holds it.
  void created(Now now, std::uint64_t op, CustomerSession session);
  /// A session from a grant, with its refresh point; `sent` is when the request went out.
  SessionRecord from_grant(const std::string& credential, uid_t owner, TokenGrant& grant, SteadyTime sent);

  // Reads, refreshes and logouts (session_scheduler.cpp).
  /// Starts a refresh of `key` unless one is under way: false when none is under way now.
  bool start_refresh(SteadyTime now, const SessionKey& key, std::optional<uid_t> peer);
  void refresh_answered(Now now, std::uint64_t id, UpstreamResult result);
  /// The answer to a read once no refresh is awaited: the token, or why not.
  SessionAnswer read_answer(Now now, const SessionKey& key);
  /// A read or a logout as `op`: its answer now, or nullopt when it waits (under `op`).
  /// `may_find`: a session not held here is looked for in a shared store.
  std::optional<SessionAnswer> read_step(Now now, std::uint64_t op, std::string_view credential, uid_t owner,
                                         const SessionKey& key, std::optional<Seconds> min_ttl, SteadyTime deadline,
                                         bool may_find);
  std::optional<SessionAnswer> end_step(Now now, std::uint64_t op, Waiter w, bool may_find);
  /// Parks `w` under `op` until the store's look-up of its key; nullopt, or why it cannot.
  std::optional<SessionAnswer> start_find(Now now, std::uint64_t op, Waiter w);
  /// The refresh-token request for a held session.
  [[nodiscard]] TokenRequest refresh_request(const CredentialConfig& cred, const CustomerSession& s) const;
  /// Revokes tokens no session holds any more (a refresh that came back for a session
  /// ended elsewhere): now when the budget allows, else at a later wake-up.
  void revoke_orphans(SteadyTime now);
  /// Replaces a held session's tokens with a newer record (another daemon refreshed it).
  void take_newer(const SessionKey& key, SessionRecord record);
  /// The store learns of evictions: a file store forgets them.
  void note_dropped();
  void save(const SessionKey& key, const SessionRecord& r) {
    if (storing_) emit(session_action::Save{key, r});
  }
  /// A logout once no refresh is under way: revoke, or why not (nullopt: revoking).
  std::optional<SessionAnswer> continue_end(Now now, std::uint64_t op, const Waiter& w);
  /// Answers the waiters of `key` that can be answered (all of them at their deadline or at stop).
  void settle(Now now, const SessionKey& key);
  void settle_one(Now now, std::uint64_t op, bool deadline_passed);
  void pause_for_rate_limit(const UpstreamFailure& f, SteadyTime now, const std::string& name);
  [[nodiscard]] const CredentialConfig* credential(const std::string& name) const { return credential_config(name); }
  void emit(SessionAction a) { actions_.push_back(std::move(a)); }
  void answer(std::uint64_t op, SessionAnswer a) { emit(session_action::Answer{op, std::move(a)}); }
  void note_evictions(std::size_t n) { view_.evicted_lru += n; }
  /// Sessions need the sweep only while there are any.
  void plan_sweep(SteadyTime now);

  UpstreamBudget& budget_;
  Random& random_;
  RefreshPolicy policy_;
  Seconds min_ttl_;
  std::string auth_url_; ///< a new auth server invalidates every session
  std::map<std::string, CredentialConfig, std::less<>> credentials_;
  SessionTable table_;
  PeerRateLimiter limiter_;
  CustomersView view_;
  std::map<std::uint64_t, Login> logins_;
  std::map<std::uint64_t, Waiter> waiters_;
  std::map<std::uint64_t, Refresh> refreshes_;
  std::map<std::uint64_t, Revoking> revokes_;
  std::map<std::uint64_t, Finding> finds_;
  std::map<uid_t, std::size_t> finds_per_peer_;
  std::map<std::uint64_t, Waiter> ending_;        ///< logouts waiting for store_ended()
  std::map<std::uint64_t, std::string> creating_; ///< logins' documents, waiting for saved()
  struct Orphan {
    std::string credential;
    std::vector<Secret> tokens;
  };
  std::vector<Orphan> orphans_;
  SteadyTime orphans_retry_ = SteadyTime::max(); ///< when the budget has a slot for them
  bool storing_ = false;
  bool shared_ = false;
  std::vector<SessionAction> actions_;
  std::uint64_t next_id_ = 1;
  SteadyTime next_sweep_ = SteadyTime::max();
  bool running_ = true;
};

} // namespace cltoken

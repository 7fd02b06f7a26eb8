#pragma once
// One credential's token cache as a state machine with no I/O: what to answer a client,
// when to fetch, and what a fetch result means. The broker (daemon/broker) runs it with
// real timers and sockets; unit tests run it with a hand-moved clock.
#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "core/clock.hpp"
#include "core/refresh_policy.hpp"
#include "core/secret.hpp"
#include "core/upstream_response.hpp"

namespace cltoken {

enum class CredentialStatus { empty, fetching, fresh, refreshing, stale, expired, failing };
[[nodiscard]] const char* to_string(CredentialStatus s);

struct CachedToken {
  Secret access_token;
  std::string token_type = "bearer";
  std::string scope;
  SteadyTime obtained_at{}; ///< when the request that got it was sent
  SteadyTime expires_at{};  ///< obtained_at + expires_in - expiry_margin
  SteadyTime refresh_at{};
  Seconds lifetime{0};
  /// From when the upstream is expected to answer with a new token rather than this one
  /// (RefreshPolicy::reissue_window); before then a request for a newer token is wasted.
  SteadyTime reissue_from{};
};

/// What to tell a client that asks for a token.
struct ServeDecision {
  enum class Action {
    serve,       ///< hand out token() now
    wait,        ///< a fetch is (or will be) under way: wait for a change, then ask again
    unavailable, ///< no valid token and none coming soon: 503 with retry_after
  };
  Action action = Action::serve;
  Seconds retry_after{0};
};

/// Counters for status and metrics.
struct CredentialCounters {
  std::uint64_t served = 0;
  std::uint64_t upstream_requests = 0;
  std::uint64_t upstream_failures = 0;
  /// Indexed by outcome: ok, then FailureKind values + 1, then no_gain (the answer was a
  /// token, but not a newer one).
  std::array<std::uint64_t, 7> outcomes{};
  static constexpr std::size_t no_gain_outcome = 6;
};

class CredentialState {
public:
  explicit CredentialState(RefreshPolicy policy) : policy_(policy) {}

  void set_policy(RefreshPolicy policy) { policy_ = policy; }
  [[nodiscard]] const RefreshPolicy& policy() const { return policy_; }

  [[nodiscard]] const std::optional<CachedToken>& token() const { return token_; }
  /// Whether the held token goes into JSON as it is (json_verbatim): decided once, when
  /// the token is taken, instead of on every serve.
  [[nodiscard]] bool token_verbatim() const { return token_verbatim_; }
  [[nodiscard]] bool has_valid(SteadyTime now) const { return token_ && now < token_->expires_at; }
  [[nodiscard]] bool in_flight() const { return in_flight_; }
  [[nodiscard]] CredentialStatus status(SteadyTime now) const;

  /// A client wants a token with at least `min_ttl` left. `waited` is true once a fetch
  /// has finished since the client started waiting: then any valid token is served, so a
  /// client never loops. `global_pause` is the end of a 429 pause, if one is running.
  /// May record demand, which makes fetch_due() true.
  ServeDecision decide(SteadyTime now, Seconds min_ttl, bool waited, std::optional<SteadyTime> global_pause);

  /// True when the keeper should fetch now.
  [[nodiscard]] bool fetch_due(SteadyTime now) const;
  /// When fetch_due() becomes true by itself (SteadyTime::max() for never or in flight).
  [[nodiscard]] SteadyTime next_due(SteadyTime now) const;

  void fetch_started(SteadyTime now);

  /// A new token must outlive the current one by more than this to count as a gain.
  /// expires_in and created_at are whole seconds, and the daemon measures expiry from when
  /// it sent the request, so the same expiry can look up to a second later.
  static constexpr Seconds gain_slack{1};
  /// The upstream's created_at (and the JWT's iat and exp) are whole seconds, rounded
  /// down: a token may stop being accepted up to a second before sent + expires_in. The
  /// daemon counts it expired that much earlier, so it never hands out one that is dead.
  static constexpr Seconds expiry_margin{1};

  /// accepted: a newer token is held. not_yet: the upstream answered with the current token
  /// because its reissue window has not opened; the next try is planned for when it
  /// opens, and nothing failed. no_gain: any other answer that brings nothing newer, a
  /// failure with backoff. revoke_reported: the upstream handed back the token a client
  /// reported refused by the API; the fetch goes on (still in flight) with a revoke of that
  /// token, then revoke_finished().
  enum class Outcome { accepted, not_yet, no_gain, revoke_reported };
  /// A grant for a request sent at `sent_at`. `jitter_u` in [-1,1], `backoff_u` in [0,1].
  Outcome fetch_succeeded(TokenGrant grant, SteadyTime sent_at, SteadyTime now, double jitter_u, double backoff_u);
  void fetch_failed(const UpstreamFailure& f, SteadyTime now, double backoff_u);
  /// After Outcome::revoke_reported: the revoke of reported() worked (`failure` empty), so
  /// the next request is due at once and must bring a new token; or it failed (or had no
  /// budget), and this fetch counts as one failure with backoff while the handed-back
  /// token, valid by the auth server's word, is served again.
  void revoke_finished(const std::optional<UpstreamFailure>& failure, SteadyTime now, double backoff_u);
  /// The token a client reported refused, while a new one is wanted in its place.
  [[nodiscard]] const std::optional<Secret>& reported() const { return invalidated_; }

  /// A token obtained elsewhere: loaded from the store at start, or fetched by another
  /// daemon of the fleet (docs/store.md). Taken when it is still valid, is not the token
  /// held or one reported invalid, and outlives the one held; its refresh time is chosen
  /// afresh from its own lifetime with `jitter_u` in [-1,1]. Costs no upstream request and
  /// counts none. Returns whether it was taken.
  bool adopt(CachedToken t, SteadyTime now, double jitter_u);

  /// A client saw `reported` rejected by the API. Drops it when it is the current token
  /// (a fetch becomes due) and returns true; returns false for an old or unknown token.
  bool invalidate(std::string_view reported);
  /// An admin asks for a fetch now (after fixing the credential upstream, say), cutting
  /// short a backoff however long. kept: nothing to do, because the held token is valid
  /// and the upstream would hand it back until its reissue window opens; in_flight: the
  /// request under way will do; due: a fetch is due now.
  enum class Retry { due, in_flight, kept };
  Retry retry_now(SteadyTime now);
  /// Forgets the token (after an upstream revoke). Nothing is fetched until a client asks:
  /// an admin who revoked a token may be retiring the credential.
  void drop();

  [[nodiscard]] const std::string& last_error() const { return last_error_; }
  [[nodiscard]] std::optional<SteadyTime> last_refresh_at() const { return last_refresh_at_; }
  [[nodiscard]] std::optional<SteadyTime> retry_at(SteadyTime now) const;
  [[nodiscard]] unsigned consecutive_failures() const { return failures_; }
  /// The last failure was the upstream refusing the credential itself (4xx).
  [[nodiscard]] bool rejected() const { return rejected_; }
  [[nodiscard]] const CredentialCounters& counters() const { return counters_; }
  void count_served() { ++counters_.served; }

private:
  [[nodiscard]] CachedToken make_token(TokenGrant grant, SteadyTime sent_at, SteadyTime expires_at, SteadyTime now,
                                       double jitter_u) const;
  /// `now + delay`, but never past the last moment the held token can still be replaced
  /// before clients see none.
  [[nodiscard]] SteadyTime retry_before_expiry(SteadyTime now, Millis delay) const;

  /// The only way token_ is set, so that token_verbatim_ always describes it.
  void hold(CachedToken t);

  RefreshPolicy policy_;
  std::optional<CachedToken> token_;
  bool token_verbatim_ = false;
  std::optional<Secret> invalidated_; ///< never accept this one back from the upstream
  /// The reported token the upstream handed back, while its revoke is under way.
  std::optional<CachedToken> handed_back_;
  /// Every token a client reported invalid (or an admin revoked), newest last: another
  /// daemon of the fleet may still hold one and write it to the store long after
  /// invalidated_ has moved on, so adopt() refuses them all. Bounded: the oldest goes first.
  std::deque<Secret> refused_;
  static constexpr std::size_t refused_kept = 16;
  void remember_refused(const Secret& token);
  /// invalidated_ came from a client's report and has not been revoked yet: if the upstream
  /// hands it back, revoke it once (after an admin revoke it already was).
  bool revoke_if_handed_back_ = false;
  bool had_token_ = false;
  bool in_flight_ = false;
  bool demand_ = false;
  bool on_demand_only_ = false; ///< after drop(): fetch only when a client asks
  bool rejected_ = false;       ///< last failure was permanent (4xx)
  unsigned failures_ = 0;
  SteadyTime retry_at_{};
  std::optional<SteadyTime> last_refresh_at_;
  std::string last_error_;
  CredentialCounters counters_;
};

} // namespace cltoken

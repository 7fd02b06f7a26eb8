#include "core/credential_state.hpp"

#include "core/json_text.hpp"

#include <algorithm>

namespace cltoken {

const char* to_string(CredentialStatus s) {
  switch (s) {
  case CredentialStatus::empty: return "empty";
  case CredentialStatus::fetching: return "fetching";
  case CredentialStatus::fresh: return "fresh";
  case CredentialStatus::refreshing: return "refreshing";
  case CredentialStatus::stale: return "stale";
  case CredentialStatus::expired: return "expired";
  case CredentialStatus::failing: return "failing";
  }
  return "empty";
}

CredentialStatus CredentialState::status(SteadyTime now) const {
  const bool valid = has_valid(now);
  if (in_flight_) return valid ? CredentialStatus::refreshing : CredentialStatus::fetching;
  if (valid) {
    if (rejected_) return CredentialStatus::failing;
    return now >= token_->refresh_at ? CredentialStatus::stale : CredentialStatus::fresh;
  }
  if (failures_ > 0) return CredentialStatus::failing;
  return had_token_ ? CredentialStatus::expired : CredentialStatus::empty;
}

std::optional<SteadyTime> CredentialState::retry_at(SteadyTime now) const {
  if (now < retry_at_) return retry_at_;
  return std::nullopt;
}

namespace {
Seconds ceil_seconds(SteadyClock::duration d) {
  auto s = std::chrono::ceil<Seconds>(d);
  return s.count() < 1 ? Seconds(1) : s;
}
} // namespace

ServeDecision CredentialState::decide(SteadyTime now, Seconds min_ttl, bool waited, std::optional<SteadyTime> global_pause) {
  const bool valid = has_valid(now);
  if (valid) {
    const auto left = token_->expires_at - now;
    if (left >= min_ttl || waited) return {ServeDecision::Action::serve, {}};
    // Otherwise serve what we have. Before the reissue window opens the upstream would
    // hand back this very token.
    const bool can_help = new_token_helps(token_->obtained_at, token_->lifetime, min_ttl, now) && now >= token_->reissue_from;
    if (!can_help) return {ServeDecision::Action::serve, {}};
    if (in_flight_) return {ServeDecision::Action::wait, {}};
    if (now < retry_at_ || global_pause) return {ServeDecision::Action::serve, {}};
    demand_ = true;
    return {ServeDecision::Action::wait, {}};
  }
  if (in_flight_) return {ServeDecision::Action::wait, {}};
  SteadyTime blocked_until = std::max(retry_at_, global_pause.value_or(SteadyTime{}));
  if (waited || now < blocked_until) {
    // The fetch we waited for failed, or we are backing off: say when to come back.
    return {ServeDecision::Action::unavailable, ceil_seconds(std::max(blocked_until, now + Seconds(1)) - now)};
  }
  demand_ = true;
  return {ServeDecision::Action::wait, {}};
}

bool CredentialState::fetch_due(SteadyTime now) const { return next_due(now) <= now; }

SteadyTime CredentialState::next_due(SteadyTime now) const {
  if (in_flight_) return SteadyTime::max();
  if (demand_) return std::max(now, retry_at_);
  if (!has_valid(now)) return on_demand_only_ ? SteadyTime::max() : std::max(now, retry_at_);
  return std::max(token_->refresh_at, retry_at_);
}

void CredentialState::fetch_started(SteadyTime) {
  in_flight_ = true;
  demand_ = false;
  ++counters_.upstream_requests;
}

CredentialState::Outcome CredentialState::fetch_succeeded(TokenGrant grant, SteadyTime sent_at, SteadyTime now, double jitter_u,
                                                          double backoff_u) {
  in_flight_ = false;
  const SteadyTime expires_at = sent_at + grant.expires_in - expiry_margin;
  const bool same_as_invalidated = invalidated_ && invalidated_->equals(grant.access_token);
  const bool same_as_current = token_ && token_->access_token.equals(grant.access_token);
  if (same_as_invalidated && revoke_if_handed_back_) {
    // The auth server still vouches for the token a client saw the API refuse, and would
    // hand it back until its reissue window opens: refusing it would leave every client
    // without a token until then. Revoked, it is never handed back; once only.
    revoke_if_handed_back_ = false;
    ++counters_.outcomes[CredentialCounters::no_gain_outcome];
    in_flight_ = true;
    // Kept aside: should the revoke fail or have no budget, this token (valid, by the auth
    // server's word) is served again rather than none at all.
    handed_back_ = make_token(std::move(grant), sent_at, expires_at, now, jitter_u);
    return Outcome::revoke_reported;
  }
  if (same_as_current && !same_as_invalidated) {
    if (auto opens = policy_.reissue_from(sent_at, grant.expires_in)) {
      // "Not yet": the upstream keeps issuing this token until it has reissue_window left,
      // and says how long it has. Try again once the window opens, by the answer's own
      // count; the upstream works, so nothing failed and no backoff grows.
      ++counters_.outcomes[CredentialCounters::no_gain_outcome];
      token_->reissue_from = *opens;
      token_->refresh_at = std::max({token_->refresh_at, *opens, now + Seconds(1)});
      demand_ = false;
      failures_ = 0;
      rejected_ = false;
      retry_at_ = {};
      last_error_.clear();
      return Outcome::not_yet;
    }
  }
  if (same_as_invalidated || same_as_current || (token_ && expires_at <= token_->expires_at + gain_slack)) {
    // No gain: the upstream handed back the same token or one that dies no later than
    // ours. Keep ours and try again after a backoff, so this can never become a loop.
    // The same token is never a gain whatever expiry it claims: accepting it would move
    // refresh_at close to now and refresh again at once.
    ++counters_.outcomes[CredentialCounters::no_gain_outcome];
    ++failures_;
    ++counters_.upstream_failures;
    retry_at_ = retry_before_expiry(now, policy_.backoff(failures_, backoff_u));
    last_error_ = same_as_invalidated ? "auth server returned the token that was just reported invalid"
                  : same_as_current   ? "auth server returned the current token again (no newer token to be had yet)"
                                      : "auth server returned a token that expires no later than the current one";
    return Outcome::no_gain;
  }
  ++counters_.outcomes[0];
  hold(make_token(std::move(grant), sent_at, expires_at, now, jitter_u));
  had_token_ = true;
  // Whatever was asked for is satisfied by a new token: waiting clients re-decide, and
  // an invalidation that arrived while this request was in flight is answered by it.
  demand_ = false;
  on_demand_only_ = false;
  invalidated_.reset();
  revoke_if_handed_back_ = false;
  failures_ = 0;
  rejected_ = false;
  retry_at_ = {};
  last_error_.clear();
  last_refresh_at_ = now;
  return Outcome::accepted;
}

CachedToken CredentialState::make_token(TokenGrant grant, SteadyTime sent_at, SteadyTime expires_at, SteadyTime now,
                                        double jitter_u) const {
  CachedToken t;
  t.access_token = std::move(grant.access_token);
  t.token_type = std::move(grant.token_type);
  t.scope = std::move(grant.scope);
  t.obtained_at = sent_at;
  t.expires_at = expires_at;
  t.lifetime = grant.expires_in;
  // Never schedule a refresh in the past or right away: a token with an absurdly short
  // lifetime must not turn the keeper into a busy loop.
  t.refresh_at = std::max(policy_.refresh_at(sent_at, grant.expires_in, jitter_u), now + Seconds(1));
  t.reissue_from = policy_.reissue_from(sent_at, grant.expires_in).value_or(SteadyTime{});
  return t;
}

void CredentialState::hold(CachedToken t) {
  token_verbatim_ = json_verbatim(t.access_token.reveal());
  token_ = std::move(t);
}

bool CredentialState::adopt(CachedToken t, SteadyTime now, double jitter_u) {
  if (t.expires_at <= now || t.access_token.empty()) return false;
  if (invalidated_ && invalidated_->equals(t.access_token)) return false;
  for (const Secret& refused : refused_)
    if (refused.equals(t.access_token)) return false;
  if (token_ && (token_->access_token.equals(t.access_token) || t.expires_at <= token_->expires_at + gain_slack)) return false;
  // As for a fetched token: never a refresh in the past or right away, so a loaded token
  // that is already due costs one fetch a second later, not a busy loop.
  t.refresh_at = std::max(policy_.refresh_at(t.obtained_at, t.lifetime, jitter_u), now + Seconds(1));
  t.reissue_from = policy_.reissue_from(t.obtained_at, t.lifetime).value_or(SteadyTime{});
  hold(std::move(t));
  had_token_ = true;
  invalidated_.reset();
  revoke_if_handed_back_ = false;
  // Demand was for a token this one may satisfy: waiting clients ask again and say so.
  demand_ = false;
  on_demand_only_ = false; // holding a token again, it is refreshed on schedule
  failures_ = 0;
  rejected_ = false;
  retry_at_ = {};
  last_error_.clear();
  last_refresh_at_ = token_->obtained_at;
  return true;
}

void CredentialState::fetch_failed(const UpstreamFailure& f, SteadyTime now, double backoff_u) {
  in_flight_ = false;
  ++failures_;
  ++counters_.upstream_failures;
  ++counters_.outcomes[static_cast<std::size_t>(f.kind) + 1];
  revoke_if_handed_back_ = false;
  last_error_ = f.message;
  rejected_ = f.kind == FailureKind::rejected;
  if (rejected_) {
    retry_at_ = now + std::max<Millis>(policy_.backoff_max, f.retry_after ? Millis(*f.retry_after) : Millis(0));
  } else if (f.retry_after) {
    retry_at_ = now + std::max<Millis>(policy_.backoff(failures_, backoff_u), *f.retry_after);
  } else {
    retry_at_ = retry_before_expiry(now, policy_.backoff(failures_, backoff_u));
  }
}

SteadyTime CredentialState::retry_before_expiry(SteadyTime now, Millis delay) const {
  const SteadyTime planned = now + delay;
  if (!has_valid(now)) return planned;
  // The last try a second before the token dies, so a backoff that grew during an outage
  // (or after answers that brought nothing new) cannot skip the moment a new token could
  // still be had while this one is served. Not sooner than a second from now: no loop.
  const SteadyTime last_chance = token_->expires_at - Seconds(1);
  if (planned <= last_chance) return planned;
  return std::max(last_chance, now + std::min<SteadyClock::duration>(delay, Seconds(1)));
}

void CredentialState::revoke_finished(const std::optional<UpstreamFailure>& failure, SteadyTime now, double backoff_u) {
  in_flight_ = false;
  ++counters_.upstream_requests; // the revoke went to the auth server too
  std::optional<CachedToken> handed_back = std::move(handed_back_);
  handed_back_.reset();
  if (!failure) {
    demand_ = true;
    retry_at_ = {};
    return;
  }
  ++failures_;
  ++counters_.upstream_failures;
  last_error_ = "auth server returned the token that was just reported invalid, and revoking it failed: " + failure->message;
  retry_at_ = now + std::max<Millis>(policy_.backoff(failures_, backoff_u),
                                     failure->retry_after ? Millis(*failure->retry_after) : Millis(0));
  if (handed_back && now < handed_back->expires_at) {
    // The auth server vouched for it moments ago: a report (a glitch of the API, or a
    // peer that wants everyone else without a token) does not outweigh that. Served
    // again until it is replaced on schedule; the next report starts over.
    hold(std::move(*handed_back));
    had_token_ = true;
    invalidated_.reset();
    demand_ = false;
    last_error_ += "; serving it meanwhile, as the auth server still accepts it";
  }
}

void CredentialState::remember_refused(const Secret& token) {
  if (refused_.size() >= refused_kept) refused_.pop_front();
  refused_.push_back(token);
}

bool CredentialState::invalidate(std::string_view reported) {
  if (!token_ || !token_->access_token.equals(reported)) return false;
  invalidated_ = token_->access_token;
  remember_refused(token_->access_token);
  revoke_if_handed_back_ = true;
  token_.reset();
  demand_ = true;
  // A token the API refused is news: retry at once even if a backoff was running.
  retry_at_ = {};
  return true;
}

CredentialState::Retry CredentialState::retry_now(SteadyTime now) {
  if (in_flight_) return Retry::in_flight;
  if (has_valid(now) && now < token_->reissue_from) return Retry::kept;
  // The count of failures stays: a refresh that fails again backs off as the last one did.
  retry_at_ = now;
  demand_ = true;
  on_demand_only_ = false;
  return Retry::due;
}

void CredentialState::drop() {
  if (token_) {
    invalidated_ = token_->access_token;
    remember_refused(token_->access_token);
  }
  revoke_if_handed_back_ = false; // revoked already
  token_.reset();
  had_token_ = false;
  on_demand_only_ = true;
}

} // namespace cltoken

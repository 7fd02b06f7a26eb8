#include "core/session_scheduler.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "core/credential_state.hpp"

namespace cltoken {

namespace {

/// How often the sweep looks for idle sessions and sessions in use whose refresh is due.
constexpr Millis sweep_interval{1000};

// No reissue window: a refresh-token grant always issues a new token, so a customer
// token is refreshed at refresh.at of its life whatever refresh.reissue_window_s says.
RefreshPolicy policy_of(const Config& c) {
  return RefreshPolicy{c.refresh.at, c.refresh.jitter, c.refresh.backoff_initial, c.refresh.backoff_max, c.refresh.min_ttl};
}

std::map<std::string, CredentialConfig, std::less<>> credentials_of(const Config& config) {
  std::map<std::string, CredentialConfig, std::less<>> out;
  for (const auto& c : config.credentials) out.emplace(c.name, c);
  return out;
}

SessionAnswer unavailable(std::string message) {
  return SessionAnswer::later(SessionAnswer::Kind::unavailable, std::move(message), Seconds(1));
}

} // namespace

SessionScheduler::SessionScheduler(const Config& config, UpstreamBudget& budget, Random& random, SteadyTime /*now*/)
    : budget_(budget), random_(random), policy_(policy_of(config)), min_ttl_(config.refresh.min_ttl),
      auth_url_(config.upstream.auth_url.text), credentials_(credentials_of(config)),
      table_(config.customers.max_sessions, config.customers.idle_timeout),
      limiter_(config.customers.login_burst, config.customers.login_interval) {
  table_.set_peer_limits(config.customers.max_sessions_per_peer, config.customers.max_memory_mib << 20);
}

const CredentialConfig* SessionScheduler::credential(const std::string& name) const {
  auto it = credentials_.find(name);
  return it == credentials_.end() ? nullptr : &it->second;
}

CustomersView SessionScheduler::view() const {
  CustomersView v = view_;
  v.sessions = table_.size();
  v.max_sessions = table_.max_sessions();
  return v;
}

SteadyTime SessionScheduler::next_wake() const {
  if (!running_) return SteadyTime::max();
  SteadyTime next = next_sweep_;
  for (const auto& [op, w] : waiters_) next = std::min(next, w.deadline);
  return next;
}

void SessionScheduler::plan_sweep(SteadyTime now) {
  if (table_.size() == 0) next_sweep_ = SteadyTime::max();
  else if (next_sweep_ == SteadyTime::max()) next_sweep_ = now + sweep_interval;
}

void SessionScheduler::apply(Now now, const Config& config) {
  policy_ = policy_of(config);
  min_ttl_ = config.refresh.min_ttl;
  table_.set_limits(config.customers.max_sessions, config.customers.idle_timeout);
  table_.set_peer_limits(config.customers.max_sessions_per_peer, config.customers.max_memory_mib << 20);
  limiter_.set_rate(config.customers.login_burst, config.customers.login_interval);
  auto next = credentials_of(config);
  for (const auto& [name, old] : credentials_) {
    auto it = next.find(name);
    if (it == next.end() || it->second.kind != CredentialKind::sales_channel || !old.same_identity(it->second) ||
        config.upstream.auth_url.text != auth_url_) {
      if (auto n = table_.drop_credential(name); n > 0)
        spdlog::info("credential {}: {} customer sessions dropped (credential removed or changed)", name, n);
    }
  }
  credentials_ = std::move(next);
  auth_url_ = config.upstream.auth_url.text;
  note_evictions(table_.evict_over_max());
  plan_sweep(now.steady);
}

void SessionScheduler::stop(Now now) {
  running_ = false;
  while (!waiters_.empty()) settle_one(now, waiters_.begin()->first, true);
}

void SessionScheduler::wake(Now now) {
  if (!running_) return;
  // Waiters first: their deadline may have come with the sweep's turn.
  std::vector<std::uint64_t> late;
  for (const auto& [op, w] : waiters_)
    if (w.deadline <= now.steady) late.push_back(op);
  for (auto op : late) settle_one(now, op, true);
  if (now.steady < next_sweep_) return;
  view_.evicted_idle += table_.evict_idle(now.steady);
  // Only sessions read since their token was obtained; each takes a budget slot, and one
  // is always left for a client that is waiting (a login, or a credential's own fetch).
  for (const auto& key : table_.due_for_refresh(now.steady)) {
    if (budget_.left(now.steady) <= 1) break;
    start_refresh(now.steady, key, std::nullopt);
  }
  next_sweep_ = SteadyTime::max();
  plan_sweep(now.steady);
}

SessionScheduler::Started SessionScheduler::read(Now now, std::string_view credential, uid_t owner, const SessionKey& key,
                                                 std::optional<Seconds> min_ttl, SteadyTime deadline) {
  CustomerSession* s = table_.use(key, owner, credential, now.steady);
  if (s == nullptr) return {SessionAnswer::of(SessionAnswer::Kind::unknown), 0};
  // Without an explicit min_ttl, refresh.min_ttl applies, but never more than a quarter of
  // the token's life: a short-lived customer token would otherwise be refreshed at every read.
  Seconds want = min_ttl.value_or(std::min(min_ttl_, std::chrono::floor<Seconds>((s->expires_at - s->obtained) / 4)));
  switch (decide_read(*s, now.steady, want)) {
  case SessionRead::serve:
  case SessionRead::serve_last: break;
  case SessionRead::serve_and_refresh: start_refresh(now.steady, key, owner); break;
  case SessionRead::expired:
    table_.erase(key);
    ++view_.expired;
    return {SessionAnswer::of(SessionAnswer::Kind::expired), 0};
  case SessionRead::refresh_then_serve:
    // Single flight: any number of readers wait for the one refresh, each until its deadline.
    if (!s->refreshing && !start_refresh(now.steady, key, owner)) break; // the best there is
    if (deadline <= now.steady) break;
    const std::uint64_t op = next_id_++;
    waiters_.emplace(op, Waiter{false, key, owner, std::string(credential), deadline, {}, {}});
    return {std::nullopt, op};
  }
  return {read_answer(now, key), 0};
}

SessionAnswer SessionScheduler::read_answer(Now now, const SessionKey& key) {
  const CustomerSession* s = table_.get(key);
  if (s == nullptr) return SessionAnswer::of(SessionAnswer::Kind::unknown);
  if (now.steady >= s->expires_at) return unavailable("the customer token has expired and could not be refreshed yet");
  // Refreshed, or the best there is (the caller reads expires_in).
  return SessionAnswer::with(SessionAnswer::Kind::served, customer_token_document(*s, now.steady, now.wall));
}

bool SessionScheduler::start_refresh(SteadyTime now, const SessionKey& key, std::optional<uid_t> peer) {
  CustomerSession* s = table_.get(key);
  if (s == nullptr) return false;
  if (s->refreshing) return true;
  const CredentialConfig* cred = credential(s->credential);
  if (cred == nullptr || !s->refresh_token) return false;
  // `peer` made it happen (a read), or nobody did (the sweep); it is charged for it.
  if (!budget_.try_take(peer, now)) return false;
  TokenRequest tr;
  tr.grant_type = "refresh_token";
  tr.client_id = cred->client_id;
  tr.client_secret = cred->client_secret;
  tr.refresh_token = s->refresh_token;
  tr.application_kind = to_string(cred->kind);
  tr.expected_owner_id = s->owner_id;
  s->refreshing = true;
  const std::uint64_t id = next_id_++;
  refreshes_.emplace(id, Refresh{key, s->credential, now});
  emit(session_action::RequestToken{id, std::move(tr)});
  return true;
}

void SessionScheduler::token_answered(Now now, std::uint64_t id, UpstreamResult result) {
  // The slot was taken when the request was decided; it is released when the answer is in.
  if (refreshes_.contains(id)) {
    budget_.release(now.steady);
    refresh_answered(now, id, std::move(result));
  } else if (logins_.contains(id)) {
    budget_.release(now.steady);
    login_answered(now, id, std::move(result));
  }
}

void SessionScheduler::refresh_answered(Now now, std::uint64_t id, UpstreamResult result) {
  auto node = refreshes_.extract(id);
  const Refresh& r = node.mapped();
  CustomerSession* s = table_.get(r.key); // it may have been ended or evicted meanwhile
  if (s == nullptr) {
    // Gone: its waiters learn so in settle().
  } else if (auto* f = std::get_if<UpstreamFailure>(&result)) {
    s->refreshing = false;
    if (f->kind == FailureKind::rejected && f->code == "invalid_grant") {
      // The refresh token is dead (expired, revoked, rotated away): so is the session.
      spdlog::info("credential {}: customer session ended: the auth server refused its refresh token", r.credential);
      table_.erase(r.key);
      ++view_.refreshes["expired"];
      ++view_.expired;
      for (auto it = waiters_.begin(); it != waiters_.end();) {
        if (it->second.key == r.key && !it->second.logout) {
          answer(it->first, SessionAnswer::of(SessionAnswer::Kind::expired));
          it = waiters_.erase(it);
        } else {
          ++it;
        }
      }
    } else {
      if (f->kind == FailureKind::rate_limited) pause_for_rate_limit(*f, now.steady, r.credential);
      ++view_.refreshes["failed"];
      ++s->failures;
      s->refresh_at = now.steady + policy_.backoff(s->failures, random_.uniform());
      spdlog::warn("credential {}: customer session refresh failed: {}", r.credential, f->message);
    }
  } else {
    auto& grant = std::get<TokenGrant>(result);
    std::optional<Secret> kept = std::move(s->refresh_token);
    CustomerSession next;
    static_cast<SessionRecord&>(next) = from_grant(r.credential, s->owner, grant, r.sent);
    if (!next.refresh_token) next.refresh_token = std::move(kept); // no rotation: the old one still works
    next.generation = s->generation + 1;
    next.last_used = s->last_used;
    next.last_read = s->last_read;
    *s = std::move(next);
    ++view_.refreshes["ok"];
    note_evictions(table_.resize(r.key)); // s may be gone from here
  }
  settle(now, r.key);
}

void SessionScheduler::settle(Now now, const SessionKey& key) {
  std::vector<std::uint64_t> ops;
  for (const auto& [op, w] : waiters_)
    if (w.key == key) ops.push_back(op);
  for (auto op : ops) settle_one(now, op, false);
}

void SessionScheduler::settle_one(Now now, std::uint64_t op, bool deadline_passed) {
  auto it = waiters_.find(op);
  if (it == waiters_.end()) return;
  const CustomerSession* s = table_.get(it->second.key);
  const bool refreshing = s != nullptr && s->refreshing;
  if (refreshing && !deadline_passed) return;
  auto node = waiters_.extract(it);
  const Waiter& w = node.mapped();
  if (!w.logout) {
    answer(op, read_answer(now, w.key));
  } else if (table_.find(w.key, w.owner, w.credential) == nullptr) {
    answer(op, SessionAnswer::of(SessionAnswer::Kind::unknown)); // the refresh ended it
  } else if (refreshing) {
    answer(op, unavailable("a refresh of this session is still under way; the session is kept"));
  } else if (auto a = continue_end(now, op, w)) {
    answer(op, std::move(*a));
  }
}

SessionScheduler::Started SessionScheduler::end(Now now, const CredentialConfig& cred, uid_t owner, const SessionKey& key,
                                                SteadyTime deadline) {
  const CustomerSession* s = table_.find(key, owner, cred.name);
  if (s == nullptr) return {SessionAnswer::of(SessionAnswer::Kind::unknown), 0};
  const std::uint64_t op = next_id_++;
  Waiter w{true, key, owner, cred.name, deadline, cred.client_id, cred.client_secret};
  if (s->refreshing) {
    // Revoking the tokens held now would leave the ones the refresh brings alive upstream
    // (a refresh token lasts two weeks): end the session with those instead.
    if (deadline <= now.steady) return {unavailable("a refresh of this session is still under way; the session is kept"), 0};
    waiters_.emplace(op, std::move(w));
    return {std::nullopt, op};
  }
  if (auto a = continue_end(now, op, w)) return {std::move(*a), 0};
  return {std::nullopt, op};
}

std::optional<SessionAnswer> SessionScheduler::continue_end(Now now, std::uint64_t op, const Waiter& w) {
  const CustomerSession* s = table_.get(w.key);
  if (!budget_.try_take(w.owner, now.steady)) {
    return SessionAnswer::later(SessionAnswer::Kind::unavailable,
                                "the upstream request budget is used up for now; the session is kept",
                                std::chrono::ceil<Seconds>(budget_.next_slot(now.steady) - now.steady));
  }
  // The refresh token too: at Commerce Layer (Doorkeeper) revoking one revokes its grant,
  // but an auth server that keeps them apart must not be left with a live refresh token.
  session_action::Revoke revoke{op, w.client_id, w.client_secret, {s->access_token}};
  if (s->refresh_token) revoke.tokens.push_back(*s->refresh_token);
  revokes_.emplace(op, Revoking{w.key, w.credential});
  emit(std::move(revoke));
  return std::nullopt;
}

void SessionScheduler::revoked(Now now, std::uint64_t id, std::optional<UpstreamFailure> failure) {
  auto node = revokes_.extract(id);
  if (node.empty()) return;
  budget_.release(now.steady);
  const Revoking& r = node.mapped();
  if (failure) {
    if (failure->kind == FailureKind::rate_limited) pause_for_rate_limit(*failure, now.steady, r.credential);
    spdlog::warn("credential {}: customer session logout: revoke failed: {}", r.credential, failure->message);
    answer(id, unavailable("revoke failed, the session is kept: " + failure->message));
    return;
  }
  if (table_.erase(r.key)) ++view_.ended;
  answer(id, SessionAnswer::with(SessionAnswer::Kind::ended, {}));
  settle(now, r.key); // readers waiting on a refresh of what is gone now
  plan_sweep(now.steady);
}

void SessionScheduler::pause_for_rate_limit(const UpstreamFailure& f, SteadyTime now, const std::string& name) {
  // The auth server counts per client IP: a 429 here pauses the credentials' requests too.
  const Millis pause = budget_.rate_limited(f, now, policy_, random_.uniform());
  spdlog::warn("credential {}: {}; all upstream requests paused for {} ms", name, f.message, pause.count());
}

} // namespace cltoken

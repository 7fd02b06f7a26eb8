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
  // Read once, like every store setting: a reload does not move sessions between stores.
  storing_ = config.customers.store && config.store.backend != "memory";
  shared_ = storing_ && config.store.backend == "redis";
  // A file store forgets what memory evicts; a shared one keeps the record for the other
  // daemons and only forgets that this daemon held it.
  table_.keep_evicted(storing_);
}

std::vector<SessionAction> SessionScheduler::take_actions() {
  note_dropped();
  return std::exchange(actions_, {});
}

void SessionScheduler::note_dropped() {
  for (auto& e : table_.take_evicted()) emit(session_action::Drop{std::move(e.credential), e.key, false});
}

const CredentialConfig* SessionScheduler::credential_config(const std::string& name) const {
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
  if (!orphans_.empty()) next = std::min(next, orphans_retry_);
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
  for (auto& [op, document] : std::exchange(creating_, {}))
    answer(op, SessionAnswer::with(SessionAnswer::Kind::created, std::move(document)));
}

void SessionScheduler::wake(Now now) {
  if (!running_) return;
  // Waiters first: their deadline may have come with the sweep's turn.
  std::vector<std::uint64_t> late;
  for (const auto& [op, w] : waiters_)
    if (w.deadline <= now.steady) late.push_back(op);
  for (auto op : late) settle_one(now, op, true);
  revoke_orphans(now.steady);
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
  const std::uint64_t op = next_id_++;
  if (auto a = read_step(now, op, credential, owner, key, min_ttl, deadline, true)) return {std::move(*a), 0};
  return {std::nullopt, op};
}

std::optional<SessionAnswer> SessionScheduler::read_step(Now now, std::uint64_t op, std::string_view credential, uid_t owner,
                                                         const SessionKey& key, std::optional<Seconds> min_ttl,
                                                         SteadyTime deadline, bool may_find) {
  CustomerSession* s = table_.use(key, owner, credential, now.steady);
  if (s == nullptr) {
    if (!shared_ || !may_find) return SessionAnswer::of(SessionAnswer::Kind::unknown);
    return start_find(now, op, Waiter{false, key, owner, std::string(credential), deadline, {}, {}, min_ttl, true});
  }
  // Without an explicit min_ttl, refresh.min_ttl applies, but never more than a quarter of
  // the token's life: a short-lived customer token would otherwise be refreshed at every read.
  Seconds want = min_ttl.value_or(std::min(min_ttl_, std::chrono::floor<Seconds>((s->expires_at - s->obtained) / 4)));
  switch (decide_read(*s, now.steady, want)) {
  case SessionRead::serve:
  case SessionRead::serve_last: break;
  case SessionRead::serve_and_refresh: start_refresh(now.steady, key, owner); break;
  case SessionRead::expired:
    if (storing_) emit(session_action::Drop{s->credential, key, true});
    table_.erase(key);
    ++view_.expired;
    return SessionAnswer::of(SessionAnswer::Kind::expired);
  case SessionRead::refresh_then_serve:
    // Single flight: any number of readers wait for the one refresh, each until its deadline.
    if (!s->refreshing && !start_refresh(now.steady, key, owner)) break; // the best there is
    if (deadline <= now.steady) break;
    waiters_.emplace(op, Waiter{false, key, owner, std::string(credential), deadline, {}, {}, min_ttl, false});
    return std::nullopt;
  }
  return read_answer(now, key);
}

std::optional<SessionAnswer> SessionScheduler::start_find(Now now, std::uint64_t op, Waiter w) {
  if (w.deadline <= now.steady) return SessionAnswer::of(SessionAnswer::Kind::unknown);
  bool in_flight = false;
  for (const auto& [id, f] : finds_)
    if (f.key == w.key) in_flight = true;
  if (!in_flight) {
    // Handles that exist nowhere cost the store a look-up each: bounded per uid, so that
    // one peer guessing cannot keep another's sessions from being found.
    if (finds_per_peer_[w.owner] >= max_finds_per_peer || finds_.size() >= max_finds)
      return SessionAnswer::later(SessionAnswer::Kind::unavailable, "too many session look-ups in the store under way; retry",
                                  Seconds(1));
    const std::uint64_t id = next_id_++;
    finds_.emplace(id, Finding{w.key, w.owner});
    ++finds_per_peer_[w.owner];
    emit(session_action::Find{id, w.credential, w.key});
  }
  waiters_.emplace(op, std::move(w));
  return std::nullopt;
}

void SessionScheduler::found(Now now, std::uint64_t id, SessionLookup lookup) {
  auto node = finds_.extract(id);
  if (node.empty()) return;
  const Finding& f = node.mapped();
  if (auto it = finds_per_peer_.find(f.peer); it != finds_per_peer_.end() && --it->second == 0) finds_per_peer_.erase(it);
  if (lookup.kind == SessionLookup::Kind::found && lookup.record && table_.get(f.key) == nullptr &&
      credential(lookup.record->credential) != nullptr) {
    CustomerSession held;
    static_cast<SessionRecord&>(held) = std::move(*lookup.record);
    ++view_.from_store;
    note_evictions(table_.insert(f.key, std::move(held), now.steady));
    plan_sweep(now.steady);
  }
  std::vector<std::uint64_t> ops;
  for (const auto& [op, w] : waiters_)
    if (w.key == f.key && w.finding) ops.push_back(op);
  for (auto op : ops) {
    auto wn = waiters_.extract(op);
    Waiter w = std::move(wn.mapped());
    if (lookup.kind == SessionLookup::Kind::unreachable && table_.get(w.key) == nullptr) {
      // Not "no such session": a storefront would sign its customer out.
      answer(op, SessionAnswer::later(SessionAnswer::Kind::unavailable,
                                      "the session store cannot be reached to find this session; retry", Seconds(1)));
      continue;
    }
    w.finding = false;
    auto a = w.logout ? end_step(now, op, std::move(w), false)
                      : read_step(now, op, w.credential, w.owner, w.key, w.min_ttl, w.deadline, false);
    if (a) answer(op, std::move(*a));
  }
}

SessionAnswer SessionScheduler::read_answer(Now now, const SessionKey& key) {
  const CustomerSession* s = table_.get(key);
  if (s == nullptr) return SessionAnswer::of(SessionAnswer::Kind::unknown);
  if (now.steady >= s->expires_at) return unavailable("the customer token has expired and could not be refreshed yet");
  // Refreshed, or the best there is (the caller reads expires_in).
  return SessionAnswer::with(SessionAnswer::Kind::served, customer_token_document(*s, now.steady, now.wall));
}

TokenRequest SessionScheduler::refresh_request(const CredentialConfig& cred, const CustomerSession& s) const {
  TokenRequest tr;
  tr.grant_type = "refresh_token";
  tr.client_id = cred.client_id;
  tr.client_secret = cred.client_secret;
  tr.refresh_token = s.refresh_token;
  tr.application_kind = to_string(cred.kind);
  tr.expected_owner_id = s.owner_id;
  return tr;
}

bool SessionScheduler::start_refresh(SteadyTime now, const SessionKey& key, std::optional<uid_t> peer) {
  CustomerSession* s = table_.get(key);
  if (s == nullptr) return false;
  if (s->refreshing) return true;
  const CredentialConfig* cred = credential(s->credential);
  if (cred == nullptr || !s->refresh_token) return false;
  const std::uint64_t id = next_id_++;
  if (shared_) {
    // Commerce Layer rotates refresh tokens: two daemons refreshing with the same one would
    // lose the session, so one of the fleet refreshes and the others take its tokens. The
    // budget slot is taken only when this daemon is the one to send.
    s->refreshing = true;
    refreshes_.emplace(id, Refresh{key, s->credential, now, s->owner, s->generation, true, peer});
    emit(session_action::AskFleet{id, s->credential, key, s->generation});
    return true;
  }
  // `peer` made it happen (a read), or nobody did (the sweep); it is charged for it.
  if (!budget_.try_take(peer, now)) return false;
  s->refreshing = true;
  refreshes_.emplace(id, Refresh{key, s->credential, now, s->owner, s->generation, false, peer});
  emit(session_action::RequestToken{id, refresh_request(*cred, *s)});
  return true;
}

void SessionScheduler::fleet_answered(Now now, std::uint64_t id, FleetRefresh a) {
  auto it = refreshes_.find(id);
  if (it == refreshes_.end() || !it->second.asking_fleet) return;
  Refresh& r = it->second;
  CustomerSession* s = table_.get(r.key);
  const CredentialConfig* cred = s == nullptr ? nullptr : credential(s->credential);
  const SessionKey key = r.key;
  if (a.kind == FleetRefresh::Kind::go && s != nullptr && cred != nullptr && s->refresh_token) {
    if (budget_.try_take(r.peer, now.steady)) {
      r.asking_fleet = false;
      r.sent = now.steady;
      r.generation = s->generation;
      emit(session_action::RequestToken{id, refresh_request(*cred, *s)});
      return;
    }
    // No slot: like a failed refresh, tried again after a backoff; the lock this daemon
    // took expires on its own, and until then the others serve what they hold.
    ++s->failures;
    s->refresh_at = now.steady + policy_.backoff(s->failures, random_.uniform());
  }
  refreshes_.erase(it);
  if (s != nullptr) {
    s->refreshing = false;
    if (a.kind == FleetRefresh::Kind::ended) {
      spdlog::info("credential {}: customer session ended on another daemon", s->credential);
      table_.erase(key);
      ++view_.ended_elsewhere;
    } else if (a.kind == FleetRefresh::Kind::newer && a.record) {
      take_newer(key, std::move(*a.record));
    }
  }
  settle(now, key);
  plan_sweep(now.steady);
}

void SessionScheduler::take_newer(const SessionKey& key, SessionRecord record) {
  CustomerSession* s = table_.get(key);
  if (s == nullptr || record.generation <= s->generation) return;
  CustomerSession next;
  record.owner = s->owner; // the same person; the uid is this host's
  static_cast<SessionRecord&>(next) = std::move(record);
  next.last_used = s->last_used;
  next.last_read = s->last_read;
  *s = std::move(next);
  ++view_.refreshes["fleet"];
  note_evictions(table_.resize(key));
}

void SessionScheduler::token_answered(Now now, std::uint64_t id, UpstreamResult result) {
  // The slot was taken when the request was decided; it is released when the answer is in.
  if (auto r = refreshes_.find(id); r != refreshes_.end() && !r->second.asking_fleet) {
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
    // Gone: its waiters learn so in settle(). In a fleet the session may live on in the
    // store, whose copy holds the refresh token just used up: the new one is saved, and
    // revoked instead when the session was ended meanwhile (saved() says so).
    if (auto* grant = std::get_if<TokenGrant>(&result); grant != nullptr && shared_) {
      SessionRecord next = from_grant(r.credential, r.owner, *grant, r.sent);
      next.generation = r.generation + 1;
      save(r.key, next);
    }
  } else if (auto* f = std::get_if<UpstreamFailure>(&result)) {
    s->refreshing = false;
    if (f->kind == FailureKind::rejected && f->code == "invalid_grant") {
      // The refresh token is dead (expired, revoked, rotated away): so is the session.
      spdlog::info("credential {}: customer session ended: the auth server refused its refresh token", r.credential);
      if (storing_) emit(session_action::Drop{r.credential, r.key, true});
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
    save(r.key, *s);
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
  if (it->second.finding && !deadline_passed) return; // found() answers it
  auto node = waiters_.extract(it);
  const Waiter& w = node.mapped();
  if (w.finding) {
    answer(op, SessionAnswer::later(SessionAnswer::Kind::unavailable,
                                    "the session store did not answer in time to find this session; retry", Seconds(1)));
  } else if (!w.logout) {
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
  const std::uint64_t op = next_id_++;
  if (auto a =
          end_step(now, op, Waiter{true, key, owner, cred.name, deadline, cred.client_id, cred.client_secret, {}, false}, true))
    return {std::move(*a), 0};
  return {std::nullopt, op};
}

std::optional<SessionAnswer> SessionScheduler::end_step(Now now, std::uint64_t op, Waiter w, bool may_find) {
  const CustomerSession* s = table_.find(w.key, w.owner, w.credential);
  if (s == nullptr) {
    if (!shared_ || !may_find) return SessionAnswer::of(SessionAnswer::Kind::unknown);
    w.finding = true;
    return start_find(now, op, std::move(w));
  }
  if (s->refreshing) {
    // Revoking the tokens held now would leave the ones the refresh brings alive upstream
    // (a refresh token lasts two weeks): end the session with those instead.
    if (w.deadline <= now.steady) return unavailable("a refresh of this session is still under way; the session is kept");
    waiters_.emplace(op, std::move(w));
    return std::nullopt;
  }
  return continue_end(now, op, w);
}

std::optional<SessionAnswer> SessionScheduler::continue_end(Now now, std::uint64_t op, const Waiter& w) {
  const CustomerSession* s = table_.get(w.key);
  if (!budget_.try_take(w.owner, now.steady)) {
    return SessionAnswer::later(SessionAnswer::Kind::unavailable,
                                "the upstream request budget is used up for now; the session is kept",
                                std::chrono::ceil<Seconds>(budget_.next_slot(now.steady) - now.steady));
  }
  if (shared_) {
    // Ended in the store first, so that no daemon of the fleet saves (or refreshes with) the
    // tokens any more; the store answers with the newest ones, which are revoked too.
    ending_.emplace(op, w);
    emit(session_action::EndInStore{op, w.credential, w.key});
    return std::nullopt;
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
  if (r.orphan) {
    if (failure)
      spdlog::warn("credential {}: revoking the tokens of a session ended elsewhere failed: {}", r.credential, failure->message);
    return;
  }
  if (failure) {
    if (failure->kind == FailureKind::rate_limited) pause_for_rate_limit(*failure, now.steady, r.credential);
    spdlog::warn("credential {}: customer session logout: revoke failed: {}", r.credential, failure->message);
    answer(id, unavailable("revoke failed, the session is kept: " + failure->message));
    return;
  }
  if (table_.erase(r.key)) ++view_.ended;
  if (storing_ && !shared_) emit(session_action::Drop{r.credential, r.key, true});
  answer(id, SessionAnswer::with(SessionAnswer::Kind::ended, {}));
  settle(now, r.key); // readers waiting on a refresh of what is gone now
  plan_sweep(now.steady);
}

void SessionScheduler::store_ended(Now now, std::uint64_t id, std::optional<SessionRecord> newest) {
  auto node = ending_.extract(id);
  if (node.empty()) return;
  const Waiter& w = node.mapped();
  const CustomerSession* s = table_.get(w.key);
  session_action::Revoke revoke{id, w.client_id, w.client_secret, {}};
  auto add = [&](const Secret& t) {
    for (const auto& have : revoke.tokens)
      if (have.reveal() == t.reveal()) return;
    revoke.tokens.push_back(t);
  };
  // The newest first: another daemon may have refreshed it, and its refresh token is the live one.
  if (newest) {
    add(newest->access_token);
    if (newest->refresh_token) add(*newest->refresh_token);
  }
  if (s != nullptr) {
    add(s->access_token);
    if (s->refresh_token) add(*s->refresh_token);
  }
  revokes_.emplace(id, Revoking{w.key, w.credential, false});
  emit(std::move(revoke));
  (void)now;
}

void SessionScheduler::saved(Now now, const SessionKey& key, SessionRecord record, SessionSaved outcome, std::uint64_t op) {
  if (auto c = creating_.extract(op); !c.empty()) {
    // Answered whatever the store said: a session it could not keep lives here meanwhile.
    answer(op, SessionAnswer::with(SessionAnswer::Kind::created, std::move(c.mapped())));
  }
  CustomerSession* s = table_.get(key);
  const bool current = s != nullptr && s->generation == record.generation;
  switch (outcome) {
  case SessionSaved::stored:
  case SessionSaved::older:
    if (current) s->unsaved = false;
    break;
  case SessionSaved::unreachable:
    if (current) s->unsaved = true;
    break;
  case SessionSaved::ended:
    // A logout elsewhere won the race with this daemon's refresh: what the refresh brought
    // is alive upstream and nobody else knows of it.
    spdlog::info("credential {}: customer session ended on another daemon during a refresh here; revoking the new tokens",
                 record.credential);
    Orphan o{record.credential, {record.access_token}};
    if (record.refresh_token) o.tokens.push_back(*record.refresh_token);
    orphans_.push_back(std::move(o));
    if (current) {
      table_.erase(key);
      ++view_.ended_elsewhere;
      settle(now, key);
    }
    revoke_orphans(now.steady);
    break;
  }
}

void SessionScheduler::revoke_orphans(SteadyTime now) {
  orphans_retry_ = SteadyTime::max();
  while (!orphans_.empty()) {
    Orphan& o = orphans_.front();
    const CredentialConfig* cred = credential(o.credential);
    if (cred == nullptr) { // removed from the config: no client to revoke with
      orphans_.erase(orphans_.begin());
      continue;
    }
    if (!budget_.try_take(std::nullopt, now)) {
      orphans_retry_ = budget_.next_slot(now);
      return;
    }
    const std::uint64_t id = next_id_++;
    revokes_.emplace(id, Revoking{SessionKey{}, o.credential, true});
    emit(session_action::Revoke{id, cred->client_id, cred->client_secret, std::move(o.tokens)});
    orphans_.erase(orphans_.begin());
  }
}

void SessionScheduler::ended_elsewhere(Now now, const std::vector<SessionKey>& keys) {
  for (const auto& key : keys) {
    CustomerSession* s = table_.get(key);
    if (s == nullptr) continue;
    // A refresh under way is saved when it ends, and the store refuses it (saved(): ended).
    table_.erase(key);
    ++view_.ended_elsewhere;
    settle(now, key);
  }
  plan_sweep(now.steady);
}

void SessionScheduler::store_available(Now /*now*/) {
  table_.for_each([this](const SessionKey& key, const CustomerSession& s) {
    if (s.unsaved) emit(session_action::Save{key, s});
  });
}

void SessionScheduler::loaded(Now now, std::vector<KeptSession> sessions) {
  for (auto& k : sessions) {
    if (credential(k.record.credential) == nullptr) continue;
    CustomerSession held;
    static_cast<SessionRecord&>(held) = std::move(k.record);
    ++view_.from_store;
    note_evictions(table_.insert(k.key, std::move(held), now.steady));
  }
  plan_sweep(now.steady);
}

void SessionScheduler::pause_for_rate_limit(const UpstreamFailure& f, SteadyTime now, const std::string& name) {
  // The auth server counts per client IP: a 429 here pauses the credentials' requests too.
  const Millis pause = budget_.rate_limited(f, now, policy_, random_.uniform());
  spdlog::warn("credential {}: {}; all upstream requests paused for {} ms", name, f.message, pause.count());
}

} // namespace cltoken

#include "core/token_scheduler.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/token_scheduler_entry.hpp"

namespace cltoken {

namespace {
RefreshPolicy policy_of(const Config& c) {
  return RefreshPolicy{c.refresh.at,          c.refresh.jitter,  c.refresh.backoff_initial,
                       c.refresh.backoff_max, c.refresh.min_ttl, c.refresh.reissue_window};
}
long seconds_until(SteadyTime t, SteadyTime now) { return std::chrono::ceil<Seconds>(t - now).count(); }
long millis(SteadyClock::duration d) { return std::chrono::duration_cast<Millis>(d).count(); }
} // namespace

TokenScheduler::TokenScheduler(const Config& config, UpstreamBudget& budget, Random& random, SteadyTime now)
    : budget_(budget), random_(random), policy_(policy_of(config)), min_ttl_(config.refresh.min_ttl),
      upstream_timeout_(config.upstream.request_timeout), auth_url_(config.upstream.auth_url.text), next_wake_(now) {
  for (const auto& c : config.credentials)
    entries_.emplace(c.name, std::make_unique<Entry>(CredentialRef{next_serial_++, c.name}, c, policy_));
}

TokenScheduler::~TokenScheduler() = default;

TokenScheduler::Entry* TokenScheduler::find(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second.get();
}

TokenScheduler::Entry* TokenScheduler::find(const CredentialRef& c) const {
  Entry* e = find(c.name);
  return e && e->ref.serial == c.serial ? e : nullptr;
}

std::vector<SchedulerAction> TokenScheduler::take_actions() {
  std::vector<SchedulerAction> out;
  out.swap(actions_);
  return out;
}

TokenScheduler::Asked TokenScheduler::ask(Now now, std::string_view name, std::optional<Seconds> min_ttl, SteadyTime deadline,
                                          std::optional<uid_t> peer) {
  Entry* e = find(name);
  if (!e) return {TokenAnswer::unknown(), 0};
  return serve(now, *e, std::max(min_ttl.value_or(Seconds(0)), min_ttl_), deadline, peer, false);
}

TokenScheduler::Asked TokenScheduler::ask_held(Now now, std::string_view name, std::optional<Seconds> min_ttl,
                                               SteadyTime deadline, std::optional<uid_t> peer) {
  Entry* e = find(name);
  if (!e) return {TokenAnswer::unknown(), 0};
  return serve(now, *e, std::max(min_ttl.value_or(Seconds(0)), min_ttl_), deadline, peer, false, true);
}

TokenScheduler::Asked TokenScheduler::invalidate(Now now, std::string_view name, const Secret& reported, SteadyTime deadline,
                                                 std::optional<uid_t> peer) {
  Entry* e = find(name);
  if (!e) return {TokenAnswer::unknown(), 0};
  const bool was_due = e->state.in_flight() || e->state.fetch_due(now.steady);
  bool caused = false;
  if (e->state.invalidate(reported.reveal())) {
    spdlog::info("credential {}: token reported invalid by a client; fetching a new one", e->ref.name);
    emit(action::Forget{e->ref}); // a stored copy must not be served again after a restart
    caused = !was_due;
    if (caused) e->cause = peer;
  }
  Asked a = serve(now, *e, Seconds(0), deadline, peer, caused);
  if (caused && a.answer) poke(now.steady); // the new fetch starts even when nobody waits for it
  return a;
}

TokenScheduler::Asked TokenScheduler::refresh(Now now, std::string_view name, SteadyTime deadline, std::optional<uid_t> peer) {
  Entry* e = find(name);
  if (!e) return {TokenAnswer::unknown(), 0};
  if (!running_) return {unavailable(*e, now.steady), 0};
  if (auto pause = budget_.paused_until(now.steady))
    return {TokenAnswer::unavailable(Unavailable::rate_limited,
                                     fmt::format("nothing fetched: {}; no upstream request for {} s", budget_.pause_reason(),
                                                 std::chrono::ceil<Seconds>(*pause - now.steady).count()),
                                     std::max(Seconds(1), std::chrono::ceil<Seconds>(*pause - now.steady))),
            0};
  switch (e->state.retry_now(now.steady)) {
  case CredentialState::Retry::kept: {
    const auto& t = *e->state.token();
    const auto left = std::chrono::floor<Seconds>(t.expires_at - now.steady);
    return {TokenAnswer::kept(fmt::format("the token held is valid for {} s and the auth server hands it back until "
                                          "its last {} s; nothing fetched (revoke replaces it now)",
                                          left.count(), policy_.reissue_window.count()),
                              left),
            0};
  }
  case CredentialState::Retry::due:
    spdlog::info("credential {}: refresh asked by an admin", e->ref.name);
    e->cause = peer;
    break;
  case CredentialState::Retry::in_flight: break;
  }
  const std::uint64_t id = next_waiter_++;
  e->waiters.push_back(Entry::Waiter{id, Seconds(0), e->generation, deadline, peer, true});
  poke(now.steady);
  return {std::nullopt, id};
}

TokenScheduler::Asked TokenScheduler::serve(Now now, Entry& e, Seconds min_ttl, SteadyTime deadline, std::optional<uid_t> peer,
                                            bool caused, bool held_ok) {
  const bool was_due = e.state.in_flight() || e.state.fetch_due(now.steady);
  ServeDecision d = e.state.decide(now.steady, min_ttl, false, budget_.paused_until(now.steady));
  if (d.action == ServeDecision::Action::serve) {
    if (held_ok)
      if (auto pieces =
              e.document.held(e.ref.name, e.config.kind, *e.state.token(), e.state.token_verbatim(), now.steady, now.wall)) {
        e.state.count_served();
        return Asked(*pieces);
      }
    return {served(now, e), 0};
  }
  if (d.action == ServeDecision::Action::unavailable || !running_) return {unavailable(e, now.steady), 0};
  // This client's wish made a fetch due before its time: the peer is charged for it.
  if (!caused && !was_due && e.state.fetch_due(now.steady)) e.cause = peer;
  const std::uint64_t id = next_waiter_++;
  e.waiters.push_back(Entry::Waiter{id, min_ttl, e.generation, deadline, peer});
  poke(now.steady);
  return {std::nullopt, id};
}

void TokenScheduler::settle(Now now, Entry& e, bool changed) {
  if (e.waiters.empty()) return;
  std::vector<Entry::Waiter> keep;
  for (auto& w : e.waiters) {
    std::optional<TokenAnswer> answer;
    if (!running_ || e.removed) {
      answer = unavailable(e, now.steady);
    } else if (w.refresh) {
      if (e.generation != w.generation) answer = refresh_ended(e, now.steady);
      else if (now.steady >= w.deadline) answer = unavailable(e, now.steady);
    } else if (now.steady >= w.deadline) {
      // Bounded by the request deadline: a still-valid token beats an error, even when it
      // has less than min_ttl left (the client reads the real expires_in).
      answer = e.state.has_valid(now.steady) ? served(now, e) : unavailable(e, now.steady);
    } else if (changed) {
      const bool was_due = e.state.in_flight() || e.state.fetch_due(now.steady);
      const bool waited = e.generation != w.generation;
      ServeDecision d = e.state.decide(now.steady, w.min_ttl, waited, budget_.paused_until(now.steady));
      if (d.action == ServeDecision::Action::serve) answer = served(now, e);
      else if (d.action == ServeDecision::Action::unavailable) answer = unavailable(e, now.steady);
      else if (!was_due && e.state.fetch_due(now.steady) && !e.cause) e.cause = w.peer;
    }
    if (answer) emit(action::Answer{w.id, std::move(*answer)});
    else keep.push_back(w);
  }
  e.waiters.swap(keep);
}

TokenAnswer TokenScheduler::served(Now now, Entry& e) {
  e.state.count_served();
  return TokenAnswer::served(e.document.render(e.ref.name, e.config.kind, *e.state.token(), now.steady, now.wall));
}

void TokenScheduler::wake(Now now) {
  for (auto& [name, e] : entries_) settle(now, *e, false);
  pass(now);
}

void TokenScheduler::pass(Now now_) {
  const SteadyTime now = now_.steady;
  if (!running_) {
    next_wake_ = SteadyTime::max();
    return;
  }
  std::vector<Entry*> by_id;
  std::vector<FetchCandidate> due;
  SteadyTime next = now + std::chrono::hours(1);
  for (auto& [name, ep] : entries_) {
    Entry& e = *ep;
    for (const auto& w : e.waiters) next = std::min(next, w.deadline);
    e.queued_until.reset();
    if (store_.load && e.store != Entry::Store::ready) {
      // A stored token may make the first fetch unnecessary: ask before it.
      if (e.store == Entry::Store::unloaded) {
        e.store = Entry::Store::loading;
        emit(action::Load{e.ref});
      }
      continue;
    }
    if (!e.state.fetch_due(now)) {
      next = std::min(next, e.state.next_due(now));
      continue;
    }
    if (store_.shared && e.gate != Entry::Gate::open) {
      if (e.gate == Entry::Gate::asking) continue;
      // Over budget: queue as usual, and ask (taking the fleet's lock) only once a slot is
      // free, so that other daemons are not kept waiting on a lock held for a queued fetch.
      if (budget_.window().available(now)) {
        e.gate = Entry::Gate::asking;
        e.fleet_rounds = 0;
        emit(action::AskFleet{e.ref, e.state.token() ? e.state.token()->expires_at : SteadyTime::min()});
        continue;
      }
    }
    FetchCandidate c;
    c.id = by_id.size();
    c.rank = budget_.rank(e.cause, now);
    c.starving = !e.waiters.empty() && !e.state.has_valid(now);
    if (e.state.token()) c.expires_at = e.state.token()->expires_at;
    due.push_back(c);
    by_id.push_back(&e);
  }
  const std::size_t free_slots = max_fetches_in_flight - std::min(max_fetches_in_flight, fetches_in_flight_);
  FetchPlan plan = plan_fetches(due, budget_.window(), now, free_slots);
  for (std::size_t id : plan.start) start_fetch(*by_id[id], now);
  std::optional<unsigned> best_queued;
  for (const auto& [id, at] : plan.queued) {
    by_id[id]->queued_until = at;
    next = std::min(next, at);
    const unsigned rank = due[id].rank;
    best_queued = best_queued ? std::min(*best_queued, rank) : rank;
  }
  budget_.set_queued(best_queued);
  log_queue(plan, now);
  next_wake_ = std::max(next, now);
}

void TokenScheduler::start_fetch(Entry& e, SteadyTime now) {
  e.gate = Entry::Gate::ask; // the fleet's answer is used up: the next fetch asks again
  e.state.fetch_started(now);
  e.fetch_started = now;
  budget_.charge(e.cause, now);
  e.cause.reset();
  ++fetches_in_flight_;
  spdlog::debug("credential {}: requesting a token", e.ref.name);
  emit(action::Fetch{e.ref});
}

void TokenScheduler::log_queue(const FetchPlan& plan, SteadyTime now) {
  // Once per episode, not once per wake-up: an operator needs to know that demand is over
  // the budget (or that a 429 pause holds everything), not every re-plan.
  const std::size_t queued = plan.queued.size();
  if (queued > 0 && queued_logged_ == 0) {
    if (auto pause = budget_.paused_until(now))
      spdlog::warn("{} credential(s) waiting: upstream requests paused for {} ms after a 429", queued, millis(*pause - now));
    else
      spdlog::warn("{} credential(s) waiting for the upstream budget ({} requests a minute): next slot in {} ms", queued,
                   budget_.limit(), millis(plan.queued.front().second - now));
  } else if (queued == 0 && queued_logged_ > 0) {
    spdlog::info("upstream budget caught up: no credential is waiting for it");
  }
  queued_logged_ = queued;
}

void TokenScheduler::rate_limited(const UpstreamFailure& f, SteadyTime now, const std::string& name) {
  // The auth server counts per client IP: one 429 means every credential is over, so the
  // whole budget pauses.
  const Millis pause = budget_.rate_limited(f, now, policy_, random_.uniform());
  spdlog::warn("credential {}: {}; all upstream requests paused for {} ms", name, f.message, pause.count());
}

void TokenScheduler::fetch_done(Now now_, const CredentialRef& c, UpstreamResult result) {
  const SteadyTime now = now_.steady;
  budget_.window().finish(now);
  if (fetches_in_flight_ > 0) --fetches_in_flight_;
  // A 429 speaks for the whole host, even about a credential a reload has since replaced.
  const auto* failure = std::get_if<UpstreamFailure>(&result);
  if (failure && failure->kind == FailureKind::rate_limited) rate_limited(*failure, now, c.name);
  else budget_.answered();
  Entry* e = find(c);
  if (!e || !e->state.in_flight()) return poke(now); // replaced by a reload meanwhile
  const SteadyTime sent = e->fetch_started;
  const auto latency_ms = millis(now - sent);
  if (auto* grant = std::get_if<TokenGrant>(&result)) {
    const auto lifetime = grant->expires_in.count();
    const auto outcome = e->state.fetch_succeeded(std::move(*grant), sent, now, random_.symmetric(), random_.uniform());
    if (outcome == CredentialState::Outcome::accepted) {
      const auto& t = *e->state.token();
      spdlog::info("credential {}: refresh ok in {} ms, expires in {} s, next refresh in {} s", c.name, latency_ms, lifetime,
                   seconds_until(t.refresh_at, now));
      spdlog::debug("credential {}: new token {}", c.name, t.access_token.fingerprint());
      emit(action::Save{e->ref, t});
    } else if (outcome == CredentialState::Outcome::revoke_reported) {
      spdlog::warn("credential {}: the auth server handed back the token a client reported invalid; revoking it so "
                   "that the next request brings a new one",
                   c.name);
      if (budget_.window().available(now)) {
        // Still in flight: the clients waiting keep waiting for the request after it.
        budget_.window().start(now);
        ++fetches_in_flight_;
        emit(action::RevokeReported{e->ref, *e->state.reported()});
        return poke(now);
      }
      e->state.revoke_finished(
          UpstreamFailure{FailureKind::rate_limited, "no upstream request budget left for the revoke", {}, 0, {}}, now,
          random_.uniform());
      spdlog::warn("credential {}: {}", c.name, e->state.last_error());
    } else if (outcome == CredentialState::Outcome::not_yet) {
      spdlog::info("credential {}: the auth server returned the current token ({} s left; it issues a new one only in "
                   "the last {} s); next try in {} s",
                   c.name, lifetime, policy_.reissue_window.count(), seconds_until(e->state.token()->refresh_at, now));
    } else {
      spdlog::warn("credential {}: refresh gave no gain ({}); keeping the current token", c.name, e->state.last_error());
    }
  } else {
    const auto& f = std::get<UpstreamFailure>(result);
    e->state.fetch_failed(f, now, random_.uniform());
    if (f.kind != FailureKind::rate_limited) {
      auto retry = e->state.retry_at(now);
      // "retry in N s" (rounded up) is the documented line (docs/monitoring.md) that log
      // readers match on.
      spdlog::warn("credential {}: refresh failed in {} ms ({}): {}; {}retry in {} s", c.name, latency_ms, to_string(f.kind),
                   f.message, e->state.has_valid(now) ? "still serving the current token; " : "",
                   retry ? std::max(1L, seconds_until(*retry, now)) : 0);
    }
  }
  ++e->generation;
  settle(now_, *e, true);
  poke(now);
}

void TokenScheduler::reported_revoked(Now now_, const CredentialRef& c, const std::optional<UpstreamFailure>& failure) {
  const SteadyTime now = now_.steady;
  budget_.window().finish(now);
  if (fetches_in_flight_ > 0) --fetches_in_flight_;
  if (failure && failure->kind == FailureKind::rate_limited) rate_limited(*failure, now, c.name);
  Entry* e = find(c);
  if (!e || !e->state.in_flight()) return poke(now);
  e->state.revoke_finished(failure, now, random_.uniform());
  if (failure) {
    spdlog::warn("credential {}: {}", c.name, e->state.last_error());
    ++e->generation;
    settle(now_, *e, true);
  }
  // Revoked: the next request, due at once, brings a new token.
  poke(now);
}

void TokenScheduler::store_loaded(Now now, const CredentialRef& c, std::optional<CachedToken> token) {
  Entry* e = find(c);
  if (!e) return;
  e->store = Entry::Store::ready;
  if (token) {
    const auto left = std::chrono::floor<Seconds>(token->expires_at - now.steady).count();
    if (e->state.adopt(std::move(*token), now.steady, random_.symmetric())) {
      spdlog::info("credential {}: stored token loaded, expires in {} s, next refresh in {} s", c.name, left,
                   seconds_until(e->state.token()->refresh_at, now.steady));
      ++e->generation;
      settle(now, *e, true);
    }
  }
  poke(now.steady);
}

void TokenScheduler::fleet_answered(Now now, const CredentialRef& c, std::optional<CachedToken> token) {
  Entry* e = find(c);
  if (!e || e->gate != Entry::Gate::asking) return poke(now.steady);
  if (token) {
    const SteadyTime newer_than = token->expires_at;
    if (e->state.adopt(std::move(*token), now.steady, random_.symmetric())) {
      spdlog::info("credential {}: took the token another daemon obtained, expires in {} s, next refresh in {} s", c.name,
                   std::chrono::floor<Seconds>(e->state.token()->expires_at - now.steady).count(),
                   seconds_until(e->state.token()->refresh_at, now.steady));
      e->gate = Entry::Gate::ask;
      ++e->generation;
      settle(now, *e, true);
      return poke(now.steady);
    }
    // A fleet token this daemon cannot take (the one a client just reported invalid) is
    // asked past: the next answer is then the lock, and this daemon fetches.
    if (++e->fleet_rounds < 3) return emit(action::AskFleet{e->ref, newer_than});
  }
  e->gate = Entry::Gate::open;
  poke(now.steady);
}

void TokenScheduler::apply(Now now, const Config& config) {
  // The auth server is part of every credential's identity: a new one invalidates all tokens.
  const bool same_server = auth_url_ == config.upstream.auth_url.text;
  policy_ = policy_of(config);
  min_ttl_ = config.refresh.min_ttl;
  upstream_timeout_ = config.upstream.request_timeout;
  auth_url_ = config.upstream.auth_url.text;
  budget_.set_limit(config.upstream.max_requests_per_minute);
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> next;
  for (const auto& c : config.credentials) {
    auto old = entries_.find(c.name);
    if (old != entries_.end() && same_server && old->second->config.same_identity(c)) {
      old->second->config = c; // allow list and other non-identity settings may change
      old->second->state.set_policy(policy_);
      next.emplace(c.name, std::move(old->second));
      entries_.erase(old);
    } else {
      next.emplace(c.name, std::make_unique<Entry>(CredentialRef{next_serial_++, c.name}, c, policy_));
      if (old != entries_.end()) spdlog::info("credential {}: identity changed, its token is dropped", c.name);
    }
  }
  for (auto& [name, e] : entries_) { // the ones removed or replaced
    e->removed = true;
    settle(now, *e, true);
  }
  entries_ = std::move(next);
  poke(now.steady);
}

void TokenScheduler::stop(Now now) {
  running_ = false;
  for (auto& [name, e] : entries_) settle(now, *e, true);
  next_wake_ = SteadyTime::max();
}

} // namespace cltoken

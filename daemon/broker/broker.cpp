#include "broker/broker.hpp"

#include <malloc.h>

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace cltoken {

namespace asio = boost::asio;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct Broker::Entry {
  Entry(CredentialConfig c, RefreshPolicy p) : config(std::move(c)), state(p) {}
  CredentialConfig config;
  CredentialState state;
  std::vector<asio::steady_timer*> waiters; ///< clients waiting for a change
  std::uint64_t generation = 0;             ///< bumped when a fetch finishes
  unsigned waiting = 0;
  bool removed = false;
  SteadyTime fetch_started{};               ///< of the fetch in flight, if any
  std::optional<SteadyTime> queued_until;   ///< due but over budget: when its turn is expected
  bool restored = false; ///< the store was asked for a saved token
  enum class Gate { ask, asking, open } gate = Gate::ask; ///< shared store: may this daemon fetch?
  mutable TokenDocumentCache document; ///< what GET /v1/tokens/{name} answers, rendered once a second
};

namespace {
RefreshPolicy policy_of(const Config& c) {
  return RefreshPolicy{c.refresh.at,          c.refresh.jitter,  c.refresh.backoff_initial,
                       c.refresh.backoff_max, c.refresh.min_ttl, c.refresh.reissue_window};
}
long to_seconds_ceil(SteadyClock::duration d) {
  auto s = std::chrono::ceil<Seconds>(d).count();
  return s < 1 ? 1 : s;
}
long to_millis(SteadyClock::duration d) { return std::chrono::duration_cast<Millis>(d).count(); }
} // namespace

Broker::Broker(asio::any_io_executor executor, const Clock& clock, Upstream& upstream, Random& random, const Config& config)
    : executor_(executor), clock_(clock), upstream_(upstream), random_(random), policy_(policy_of(config)),
      min_ttl_(config.refresh.min_ttl), upstream_timeout_(config.upstream.request_timeout), auth_url_(config.upstream.auth_url.text),
      budget_(config.upstream.max_requests_per_minute), wake_(executor), started_at_(clock.wall_now()),
      started_steady_(clock.now()) {
  for (const auto& c : config.credentials) entries_.emplace(c.name, std::make_shared<Entry>(c, policy_));
}

Broker::~Broker() = default;

void Broker::start() {
  running_ = true;
  next_wake_ = clock_.now(); // the first pass is due at once
  asio::co_spawn(executor_, schedule(), [](std::exception_ptr p) {
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const std::exception& e) {
      spdlog::critical("token scheduler stopped: {}", e.what());
      throw; // a dead scheduler must not look like a healthy daemon
    }
  });
}

void Broker::stop() {
  running_ = false;
  wake_.cancel();
  for (auto& [name, e] : entries_) notify(*e);
}

void Broker::poke() { wake_.cancel(); }

void Broker::notify(Entry& e) {
  for (auto* t : e.waiters) t->cancel();
}

std::shared_ptr<Broker::Entry> Broker::find(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second;
}

const CredentialConfig* Broker::credential(std::string_view name) const {
  auto e = find(name);
  return e ? &e->config : nullptr;
}

std::vector<const CredentialConfig*> Broker::credentials() const {
  std::vector<const CredentialConfig*> out;
  out.reserve(entries_.size());
  for (const auto& [name, e] : entries_) out.push_back(&e->config);
  return out;
}

bool Broker::holds(std::string_view name, const Secret& token) const {
  auto e = find(name);
  return e && e->state.token() && e->state.token()->access_token.equals(token.reveal());
}

void Broker::apply(const Config& config) {
  // The auth server is part of every credential's identity: a new one invalidates all tokens.
  const bool same_server = auth_url_ == config.upstream.auth_url.text;
  policy_ = policy_of(config);
  min_ttl_ = config.refresh.min_ttl;
  upstream_timeout_ = config.upstream.request_timeout;
  auth_url_ = config.upstream.auth_url.text;
  budget_.set_limit(config.upstream.max_requests_per_minute);
  std::map<std::string, std::shared_ptr<Entry>, std::less<>> next;
  for (const auto& c : config.credentials) {
    auto old = find(c.name);
    if (old && same_server && old->config.same_identity(c)) {
      old->config = c; // allow list and other non-identity settings may change
      old->state.set_policy(policy_);
      next.emplace(c.name, old);
    } else {
      next.emplace(c.name, std::make_shared<Entry>(c, policy_));
      if (old) spdlog::info("credential {}: identity changed, its token is dropped", c.name);
    }
  }
  for (auto& [name, e] : entries_) {
    if (!next.contains(name) || next.at(name) != e) {
      e->removed = true;
      notify(*e);
    }
  }
  entries_ = std::move(next);
  poke();
}

asio::awaitable<void> Broker::schedule() {
  while (running_) {
    co_await restore();
    const SteadyTime now = clock_.now();
    std::vector<std::shared_ptr<Entry>> by_id;
    std::vector<FetchCandidate> due;
    SteadyTime next = now + std::chrono::hours(1);
    for (auto& [name, e] : entries_) {
      e->queued_until.reset();
      if (!e->state.fetch_due(now)) {
        next = std::min(next, e->state.next_due(now));
        continue;
      }
      if (!fetch_cleared(*e, now)) continue;
      FetchCandidate c;
      c.id = by_id.size();
      c.starving = e->waiting > 0 && !e->state.has_valid(now);
      if (e->state.token()) c.expires_at = e->state.token()->expires_at;
      due.push_back(c);
      by_id.push_back(e);
    }
    const std::size_t free_slots = max_fetches_in_flight - std::min(max_fetches_in_flight, fetches_in_flight_);
    FetchPlan plan = plan_fetches(std::move(due), budget_, now, free_slots);
    for (std::size_t id : plan.start) start_fetch(by_id[id], now);
    for (const auto& [id, at] : plan.queued) {
      by_id[id]->queued_until = at;
      next = std::min(next, at);
    }
    log_queue(plan, now);
    next_wake_ = std::max(next, now);
    wake_.expires_at(next_wake_);
    co_await wake_.async_wait(use_tuple);
  }
}

void Broker::start_fetch(const std::shared_ptr<Entry>& e, SteadyTime now) {
  e->gate = Entry::Gate::ask; // the fleet's answer is used up: the next fetch asks again
  e->state.fetch_started(now);
  e->fetch_started = now;
  ++fetches_in_flight_;
  asio::co_spawn(executor_, fetch(e), [this, name = e->config.name](std::exception_ptr p) {
    // A start with many credentials fetches them all at once: each TLS connection's buffers
    // are freed when it ends, but the allocator keeps the pages, so the daemon would hold the
    // peak (about 90 MiB for 1,000 credentials) for good. The last fetch of a burst hands
    // them back; this runs once per burst, not per request (docs/performance.md).
    if (--fetches_in_flight_ == 0) ::malloc_trim(0);
    poke(); // a connection slot is free: a credential held for one can start now
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const std::exception& ex) {
      spdlog::error("credential {}: fetch failed unexpectedly: {}", name, ex.what());
    }
  });
}

void Broker::log_queue(const FetchPlan& plan, SteadyTime now) {
  // Once per episode, not once per wake-up: an operator needs to know that demand is over
  // the budget (or that a 429 pause holds everything), not every re-plan.
  const std::size_t queued = plan.queued.size();
  if (queued > 0 && queued_logged_ == 0) {
    if (auto pause = budget_.paused_until(now))
      spdlog::warn("{} credential(s) waiting: upstream requests paused for {} ms after a 429", queued, to_millis(*pause - now));
    else
      spdlog::warn("{} credential(s) waiting for the upstream budget ({} requests a minute): next slot in {} ms", queued,
                   budget_.limit(), to_millis(plan.queued.front().second - now));
  } else if (queued == 0 && queued_logged_ > 0) {
    spdlog::info("upstream budget caught up: no credential is waiting for it");
  }
  queued_logged_ = queued;
}

asio::awaitable<void> Broker::fetch(std::shared_ptr<Entry> e) {
  TokenRequest req;
  req.grant_type = "client_credentials";
  req.client_id = e->config.client_id;
  req.client_secret = e->config.client_secret;
  req.scope = e->config.scope;
  req.application_kind = to_string(e->config.kind);
  const SteadyTime sent = clock_.now();
  spdlog::debug("credential {}: requesting a token", e->config.name);
  UpstreamResult result{UpstreamFailure{}};
  try {
    result = co_await upstream_.request_token(req);
  } catch (const std::exception& ex) {
    // A bug or resource exhaustion must not leave the credential in flight for ever and
    // its budget slot taken: it becomes a failure like any other, with backoff.
    result = UpstreamFailure{FailureKind::network_error, fmt::format("internal error asking the auth server: {}", ex.what()), {}, 0, {}};
  }
  const SteadyTime now = clock_.now();
  budget_.finish(now);
  const auto latency_ms = std::chrono::duration_cast<Millis>(now - sent).count();
  if (auto* grant = std::get_if<TokenGrant>(&result)) {
    const auto lifetime = grant->expires_in.count();
    rate_limit_strikes_ = 0;
    auto outcome = e->state.fetch_succeeded(std::move(*grant), sent, now, random_.symmetric(), random_.uniform());
    if (outcome == CredentialState::Outcome::accepted) {
      const auto& t = *e->state.token();
      spdlog::info("credential {}: refresh ok in {} ms, expires in {} s, next refresh in {} s", e->config.name, latency_ms,
                   lifetime, std::chrono::ceil<Seconds>(t.refresh_at - now).count());
      spdlog::debug("credential {}: new token {}", e->config.name, t.access_token.fingerprint());
      save_token(e);
    } else if (outcome == CredentialState::Outcome::revoke_reported) {
      if (co_await revoke_reported(e)) {
        // Revoked: the next request, due at once, brings a new token; the clients waiting
        // keep waiting for it rather than hear that this fetch brought nothing.
        poke();
        co_return;
      }
    } else if (outcome == CredentialState::Outcome::not_yet) {
      spdlog::info("credential {}: the auth server returned the current token ({} s left; it issues a new one only in "
                   "the last {} s); next try in {} s",
                   e->config.name, lifetime, policy_.reissue_window.count(),
                   std::chrono::ceil<Seconds>(e->state.token()->refresh_at - now).count());
    } else {
      spdlog::warn("credential {}: refresh gave no gain ({}); keeping the current token", e->config.name,
                   e->state.last_error());
    }
  } else {
    auto& f = std::get<UpstreamFailure>(result);
    e->state.fetch_failed(f, now, random_.uniform());
    if (f.kind == FailureKind::rate_limited) {
      pause_for_rate_limit(f, now, e->config.name);
    } else {
      auto retry = e->state.retry_at(now);
      // "retry in N s" (rounded up) is the documented line (docs/monitoring.md) that log
      // readers match on.
      spdlog::warn("credential {}: refresh failed in {} ms ({}): {}; {}retry in {} s", e->config.name, latency_ms,
                   to_string(f.kind), f.message, e->state.has_valid(now) ? "still serving the current token; " : "",
                   retry ? to_seconds_ceil(*retry - now) : 0);
    }
  }
  ++e->generation;
  notify(*e);
  poke();
}

asio::awaitable<bool> Broker::revoke_reported(const std::shared_ptr<Entry>& e) {
  spdlog::warn("credential {}: the auth server handed back the token a client reported invalid; revoking it so "
               "that the next request brings a new one",
               e->config.name);
  std::optional<UpstreamFailure> failure;
  const SteadyTime now = clock_.now();
  if (!budget_.available(now)) {
    failure = UpstreamFailure{FailureKind::rate_limited, "no upstream request budget left for the revoke", {}, 0, {}};
  } else {
    budget_.start(now);
    Secret copy = *e->state.reported();
    try {
      failure = co_await upstream_.revoke(e->config.client_id, e->config.client_secret, copy);
    } catch (const std::exception& ex) {
      failure = UpstreamFailure{FailureKind::network_error, fmt::format("internal error asking the auth server: {}", ex.what()), {}, 0, {}};
    }
    budget_.finish(clock_.now());
    if (failure && failure->kind == FailureKind::rate_limited) pause_for_rate_limit(*failure, clock_.now(), e->config.name);
  }
  e->state.revoke_finished(failure, clock_.now(), random_.uniform());
  if (failure) spdlog::warn("credential {}: {}", e->config.name, e->state.last_error());
  co_return !failure;
}

void Broker::pause_for_rate_limit(const UpstreamFailure& f, SteadyTime now, const std::string& name) {
  // The auth server counts per client IP: one 429 means every credential is over, so the
  // whole budget pauses.
  const Millis pause = policy_.rate_limit_pause(f.retry_after, ++rate_limit_strikes_, random_.uniform());
  budget_.pause_until(now + pause);
  rate_limit_message_ = f.message;
  spdlog::warn("credential {}: {}; all upstream requests paused for {} ms", name, f.message, pause.count());
}

bool Broker::take_upstream_slot() {
  const SteadyTime now = clock_.now();
  if (!budget_.available(now)) return false;
  budget_.start(now);
  return true;
}

void Broker::release_upstream_slot() {
  budget_.finish(clock_.now());
  poke(); // the scheduler may be waiting for this slot
}

unsigned Broker::upstream_slots_left() {
  const SteadyTime now = clock_.now();
  return budget_.paused_until(now) ? 0 : budget_.remaining(now);
}

SteadyTime Broker::next_upstream_slot() { return budget_.next_slot(clock_.now()); }

void Broker::upstream_rate_limited(const UpstreamFailure& f, const std::string& what) {
  pause_for_rate_limit(f, clock_.now(), what);
}

asio::awaitable<bool> Broker::wait_change(Entry& e, SteadyTime deadline) {
  asio::steady_timer t(executor_, deadline);
  e.waiters.push_back(&t);
  ++e.waiting;
  auto [ec] = co_await t.async_wait(use_tuple);
  --e.waiting;
  e.waiters.erase(std::find(e.waiters.begin(), e.waiters.end(), &t));
  co_return ec == asio::error::operation_aborted;
}

Response Broker::token_response(const Entry& e) {
  return json_response(e.document.render(e.config.name, e.config.kind, *e.state.token(), clock_.now(), clock_.wall_now()));
}

Response Broker::unavailable(const Entry& e, SteadyTime now) {
  const auto& st = e.state;
  const std::string& name = e.config.name;
  const std::string& why = st.last_error();
  // When a client may usefully come back: the end of a backoff, of a 429 pause, its turn
  // in the budget queue, or the deadline of a request still in flight.
  SteadyTime back = now;
  if (auto r = st.retry_at(now)) back = std::max(back, *r);
  if (auto p = budget_.paused_until(now)) back = std::max(back, *p);
  if (e.queued_until) back = std::max(back, *e.queued_until);
  if (st.in_flight()) back = std::max(back, e.fetch_started + upstream_timeout_);
  const long retry = to_seconds_ceil(back - now);

  Response r;
  if (st.rejected()) {
    r = error_response(503, "upstream_rejected",
                       fmt::format("the auth server refuses credential \"{}\": {}; next attempt in {} s", name, why, retry));
  } else if (auto p = budget_.paused_until(now)) {
    r = error_response(503, "upstream_unavailable",
                       fmt::format("no valid token for \"{}\": {}; no upstream request for {} s", name,
                                   rate_limit_message_, to_seconds_ceil(*p - now)));
  } else if (e.queued_until) {
    r = error_response(503, "upstream_unavailable",
                       fmt::format("no valid token for \"{}\" yet: waiting for the upstream request budget ({} a minute, "
                                   "all credentials together); its turn comes in about {} s",
                                   name, budget_.limit(), retry));
  } else if (st.in_flight()) {
    r = error_response(503, "upstream_unavailable",
                       fmt::format("no valid token for \"{}\": the auth server has not answered within the request deadline{}",
                                   name, why.empty() ? "" : " (last failure: " + why + ")"));
  } else {
    r = error_response(503, "upstream_unavailable",
                       fmt::format("no valid token for \"{}\": {}; next attempt in {} s", name,
                                   why.empty() ? "no token fetched yet" : why, retry));
  }
  r.retry_after = retry;
  return r;
}

asio::awaitable<Response> Broker::serve(std::shared_ptr<Entry> e, Seconds min_ttl, SteadyTime deadline) {
  const std::uint64_t start_generation = e->generation;
  for (;;) {
    const SteadyTime now = clock_.now();
    const bool waited = e->generation != start_generation;
    ServeDecision d = e->state.decide(now, min_ttl, waited, budget_.paused_until(now));
    if (d.action == ServeDecision::Action::serve) {
      e->state.count_served();
      co_return token_response(*e);
    }
    if (d.action == ServeDecision::Action::unavailable || e->removed || !running_) co_return unavailable(*e, now);
    poke();
    const bool changed = co_await wait_change(*e, deadline);
    if (!changed && clock_.now() >= deadline) {
      // Bounded by the request deadline: a still-valid token beats an error, even when it
      // has less than min_ttl left (the client reads the real expires_in).
      if (e->state.has_valid(clock_.now())) {
        e->state.count_served();
        co_return token_response(*e);
      }
      co_return unavailable(*e, clock_.now());
    }
  }
}

asio::awaitable<Response> Broker::get_token(std::string name, std::optional<Seconds> min_ttl, SteadyTime deadline) {
  auto e = find(name);
  if (!e) co_return error_response(404, "unknown_credential", unknown_credential_message);
  co_return co_await serve(e, std::max(min_ttl.value_or(Seconds(0)), min_ttl_), deadline);
}

asio::awaitable<Response> Broker::invalidate(std::string name, Secret reported, SteadyTime deadline) {
  auto e = find(name);
  if (!e) co_return error_response(404, "unknown_credential", unknown_credential_message);
  if (e->state.invalidate(reported.reveal())) {
    spdlog::info("credential {}: token reported invalid by a client; fetching a new one", name);
    forget_token(e); // a stored copy must not be served again after a restart
    poke();
  }
  co_return co_await serve(e, Seconds(0), deadline);
}

asio::awaitable<Response> Broker::revoke(std::string name, SteadyTime deadline) {
  auto e = find(name);
  if (!e) co_return error_response(404, "unknown_credential", unknown_credential_message);
  (void)deadline; // the upstream client's own deadlines bound this call
  if (auto& token = e->state.token()) {
    const SteadyTime now = clock_.now();
    if (!budget_.available(now)) {
      Response r = error_response(503, "upstream_unavailable",
                                  budget_.paused_until(now) ? "upstream requests are paused after a 429 from the auth server; the token is kept"
                                                            : "the upstream request budget is used up for now; the token is kept");
      r.retry_after = to_seconds_ceil(budget_.next_slot(now) - now);
      co_return r;
    }
    budget_.start(now);
    Secret copy = token->access_token;
    std::optional<UpstreamFailure> failure;
    try {
      failure = co_await upstream_.revoke(e->config.client_id, e->config.client_secret, copy);
    } catch (const std::exception& ex) {
      failure = UpstreamFailure{FailureKind::network_error, fmt::format("internal error asking the auth server: {}", ex.what()), {}, 0, {}};
    }
    budget_.finish(clock_.now());
    poke(); // a slot's window now runs from here
    if (failure) {
      spdlog::warn("credential {}: revoke failed: {}", name, failure->message);
      if (failure->kind == FailureKind::rate_limited) pause_for_rate_limit(*failure, clock_.now(), name);
      Response r = error_response(503, failure->kind == FailureKind::rejected ? "upstream_rejected" : "upstream_unavailable",
                                  "revoke failed, the token is kept: " + failure->message);
      const auto pause = budget_.paused_until(clock_.now());
      r.retry_after = pause ? to_seconds_ceil(*pause - clock_.now()) : 1;
      co_return r;
    }
    // Drop only the token we revoked: a refresh may have replaced it meanwhile.
    if (e->state.token() && e->state.token()->access_token.equals(copy)) {
      e->state.drop();
      forget_token(e); // a stored copy must not come back at the next restart
    }
    ++e->generation;
    notify(*e);
    spdlog::info("credential {}: token revoked upstream and dropped", name);
  }
  co_return json_response(R"({"revoked":true})");
}

StatusView Broker::status_view() {
  StatusView s;
  status_view(s);
  return s;
}

void Broker::status_view(StatusView& s) {
  const SteadyTime now = clock_.now();
  s.credentials.clear(); // keeps its capacity
  s.version = CLTOKEN_VERSION;
  s.started_at = started_at_;
  s.started_steady = started_steady_;
  s.auth_url = auth_url_;
  s.requests_last_minute = budget_.used(now);
  s.budget_per_minute = budget_.limit();
  s.rate_limited_until = budget_.paused_until(now);
  for (const auto& [name, e] : entries_) {
    CredentialView v;
    v.name = name;
    v.kind = e->config.kind;
    v.state = e->state.status(now);
    if (e->state.token()) v.expires_at = e->state.token()->expires_at;
    if (e->state.in_flight())
      v.next_refresh = now;
    else if (e->queued_until)
      v.next_refresh = e->queued_until;
    else if (auto due = e->state.next_due(now); due != SteadyTime::max())
      v.next_refresh = due;
    v.last_refresh_at = e->state.last_refresh_at();
    v.last_error = e->state.last_error();
    v.rejected = e->state.rejected();
    v.counters = e->state.counters();
    s.credentials.push_back(std::move(v));
  }
}

Broker::Progress Broker::progress() const {
  Progress p{running_, next_wake_, std::nullopt};
  for (const auto& [name, e] : entries_)
    if (e->state.in_flight() && (!p.oldest_fetch || e->fetch_started < *p.oldest_fetch)) p.oldest_fetch = e->fetch_started;
  return p;
}

std::vector<std::string> Broker::not_ready() {
  std::vector<std::string> out;
  const SteadyTime now = clock_.now();
  for (const auto& [name, e] : entries_)
    if (!e->state.has_valid(now)) out.push_back(name);
  return out;
}

// Token store hooks (docs/store.md). The store is asked for a saved token before the
// first fetch of each credential, told of each accepted token and of each revoke, and,
// when daemons share it, asked before each fetch whether another daemon has one already.

asio::awaitable<void> Broker::restore() {
  std::vector<std::shared_ptr<Entry>> pending;
  for (auto& [name, e] : entries_)
    if (!e->restored) pending.push_back(e);
  for (auto& e : pending) {
    e->restored = true;
    // A named subject: GCC 12 destroys a braced temporary twice across co_await.
    const StoreSubject subject{e->config, auth_url_};
    auto token = co_await store_->load(subject);
    if (!token || e->removed) continue;
    const SteadyTime now = clock_.now();
    const auto left = std::chrono::floor<Seconds>(token->expires_at - now).count();
    if (e->state.adopt(std::move(*token), now, random_.symmetric())) {
      spdlog::info("credential {}: stored token loaded, expires in {} s, next refresh in {} s", e->config.name, left,
                   std::chrono::ceil<Seconds>(e->state.token()->refresh_at - now).count());
      ++e->generation;
      notify(*e);
    }
  }
}

bool Broker::fetch_cleared(Entry& e, SteadyTime now) {
  if (!store_->shared() || e.gate == Entry::Gate::open) return true;
  if (e.gate == Entry::Gate::asking) return false;
  // Over budget: queue as usual, and ask (taking the fleet's lock) only once a slot is
  // free, so that other daemons are not kept waiting on a lock held for a queued fetch.
  if (!budget_.available(now)) return true;
  e.gate = Entry::Gate::asking;
  asio::co_spawn(executor_, consult(entries_.at(e.config.name)), [name = e.config.name](std::exception_ptr p) {
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const std::exception& ex) {
      spdlog::error("credential {}: asking the token store failed unexpectedly: {}", name, ex.what());
    }
  });
  return false;
}

asio::awaitable<void> Broker::consult(std::shared_ptr<Entry> e) {
  // co_spawn runs this inline, inside the scheduler's pass; a store that answers without
  // suspending (Redis down) would poke() a scheduler not yet waiting, and the wake-up would
  // be lost. Going through the queue first lets the pass end and the scheduler wait.
  co_await asio::post(executor_, asio::use_awaitable);
  SteadyTime newer_than = e->state.token() ? e->state.token()->expires_at : SteadyTime::min();
  // A fleet token this daemon cannot take (the one a client just reported invalid) is
  // asked past: the next answer is then the lock, and this daemon fetches.
  const StoreSubject subject{e->config, auth_url_}; // named: see restore()
  for (int round = 0; round < 3 && e->gate == Entry::Gate::asking; ++round) {
    auto token = co_await store_->before_fetch(subject, newer_than);
    if (!token || e->removed) break;
    const SteadyTime now = clock_.now();
    newer_than = token->expires_at;
    if (e->state.adopt(std::move(*token), now, random_.symmetric())) {
      spdlog::info("credential {}: took the token another daemon obtained, expires in {} s, next refresh in {} s",
                   e->config.name, std::chrono::floor<Seconds>(e->state.token()->expires_at - now).count(),
                   std::chrono::ceil<Seconds>(e->state.token()->refresh_at - now).count());
      e->gate = Entry::Gate::ask;
      ++e->generation;
      notify(*e);
    }
  }
  if (e->gate == Entry::Gate::asking) e->gate = Entry::Gate::open;
  poke();
}

void Broker::save_token(const std::shared_ptr<Entry>& e) {
  if (!e->state.token()) return;
  asio::co_spawn(executor_, store_->save({e->config, auth_url_}, *e->state.token()),
                 [name = e->config.name, keep = e](std::exception_ptr p) {
                   if (!p) return;
                   try {
                     std::rethrow_exception(p);
                   } catch (const std::exception& ex) {
                     spdlog::error("credential {}: saving the token failed unexpectedly: {}", name, ex.what());
                   }
                 });
}

void Broker::forget_token(const std::shared_ptr<Entry>& e) {
  asio::co_spawn(executor_, store_->forget({e->config, auth_url_}), [name = e->config.name, keep = e](std::exception_ptr p) {
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const std::exception& ex) {
      spdlog::error("credential {}: removing the revoked or invalidated token from the store failed: {}", name, ex.what());
    }
  });
}

} // namespace cltoken

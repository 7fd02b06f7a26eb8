#include "broker/broker.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
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
};

namespace {
RefreshPolicy policy_of(const Config& c) {
  return RefreshPolicy{c.refresh.at, c.refresh.jitter, c.refresh.backoff_initial, c.refresh.backoff_max};
}
long to_seconds_ceil(SteadyClock::duration d) {
  auto s = std::chrono::ceil<Seconds>(d).count();
  return s < 1 ? 1 : s;
}
} // namespace

Broker::Broker(asio::any_io_executor executor, const Clock& clock, Upstream& upstream, Random& random, const Config& config)
    : executor_(executor), clock_(clock), upstream_(upstream), random_(random), policy_(policy_of(config)),
      min_ttl_(config.refresh.min_ttl), auth_url_(config.upstream.auth_url.text),
      budget_(config.upstream.max_requests_per_minute), wake_(executor), started_at_(clock.wall_now()),
      started_steady_(clock.now()) {
  for (const auto& c : config.credentials) entries_.emplace(c.name, std::make_shared<Entry>(c, policy_));
}

Broker::~Broker() = default;

void Broker::start() {
  running_ = true;
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

void Broker::apply(const Config& config) {
  // The auth server is part of every credential's identity: a new one invalidates all tokens.
  const bool same_server = auth_url_ == config.upstream.auth_url.text;
  policy_ = policy_of(config);
  min_ttl_ = config.refresh.min_ttl;
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
    const SteadyTime now = clock_.now();
    std::vector<Entry*> due;
    SteadyTime next = now + std::chrono::hours(1);
    for (auto& [name, e] : entries_) {
      if (e->state.fetch_due(now))
        due.push_back(e.get());
      else
        next = std::min(next, e->state.next_due(now));
    }
    // Who goes first when the budget is short: a credential with clients waiting and no
    // valid token, then the token closest to expiry (no token at all counts as expired).
    auto key = [&](const Entry* e) {
      const bool starving = e->waiting > 0 && !e->state.has_valid(now);
      const SteadyTime exp = e->state.token() ? e->state.token()->expires_at : SteadyTime::min();
      return std::pair(!starving, exp);
    };
    std::stable_sort(due.begin(), due.end(), [&](const Entry* a, const Entry* b) { return key(a) < key(b); });
    for (Entry* e : due) {
      if (!budget_.available(now)) {
        next = std::min(next, budget_.next_slot(now));
        break;
      }
      budget_.record(now);
      e->state.fetch_started(now);
      asio::co_spawn(executor_, fetch(entries_.at(e->config.name)), [name = e->config.name](std::exception_ptr p) {
        if (!p) return;
        try {
          std::rethrow_exception(p);
        } catch (const std::exception& ex) {
          spdlog::error("credential {}: fetch failed unexpectedly: {}", name, ex.what());
        }
      });
    }
    wake_.expires_at(std::max(next, now));
    co_await wake_.async_wait(use_tuple);
  }
}

asio::awaitable<void> Broker::fetch(std::shared_ptr<Entry> e) {
  TokenRequest req;
  req.grant_type = "client_credentials";
  req.client_id = e->config.client_id;
  req.client_secret = e->config.client_secret;
  req.scope = e->config.scope;
  const SteadyTime sent = clock_.now();
  spdlog::debug("credential {}: requesting a token", e->config.name);
  UpstreamResult result = co_await upstream_.request_token(req);
  const SteadyTime now = clock_.now();
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
    } else {
      spdlog::warn("credential {}: refresh gave no gain ({}); keeping the current token", e->config.name,
                   e->state.last_error());
    }
  } else {
    auto& f = std::get<UpstreamFailure>(result);
    e->state.fetch_failed(f, now, random_.uniform());
    if (f.kind == FailureKind::rate_limited) {
      ++rate_limit_strikes_;
      Millis pause = f.retry_after ? Millis(*f.retry_after) : policy_.backoff(rate_limit_strikes_, random_.uniform());
      budget_.pause_until(now + pause);
      spdlog::warn("credential {}: {}; all upstream requests paused for {} ms", e->config.name, f.message, pause.count());
    } else {
      auto retry = e->state.retry_at(now);
      spdlog::warn("credential {}: refresh failed in {} ms ({}): {}; retry in {} s", e->config.name, latency_ms,
                   to_string(f.kind), f.message, retry ? std::chrono::ceil<Seconds>(*retry - now).count() : 0);
    }
  }
  ++e->generation;
  notify(*e);
  poke();
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
  return json_response(token_document(e.config.name, e.config.kind, *e.state.token(), clock_.now(), clock_.wall_now()));
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
    if (d.action == ServeDecision::Action::unavailable || e->removed || !running_) {
      const bool rejected = e->state.rejected();
      std::string why = e->state.last_error().empty() ? "no token yet" : e->state.last_error();
      Response r = rejected ? error_response(503, "upstream_rejected", "the auth server refuses this credential: " + why)
                            : error_response(503, "upstream_unavailable", "no valid token can be had now: " + why);
      r.retry_after = std::max<long>(1, d.retry_after.count());
      co_return r;
    }
    poke();
    const bool changed = co_await wait_change(*e, deadline);
    if (!changed && clock_.now() >= deadline) {
      if (e->state.has_valid(clock_.now())) {
        e->state.count_served();
        co_return token_response(*e);
      }
      std::string why = e->state.last_error().empty() ? "the auth server has not answered yet" : e->state.last_error();
      Response r = error_response(503, "upstream_unavailable", "no token within the request deadline: " + why);
      auto retry = e->state.retry_at(clock_.now());
      r.retry_after = retry ? to_seconds_ceil(*retry - clock_.now()) : 1;
      co_return r;
    }
  }
}

asio::awaitable<Response> Broker::get_token(std::string name, std::optional<Seconds> min_ttl, SteadyTime deadline) {
  auto e = find(name);
  if (!e) co_return error_response(404, "unknown_credential", "no credential named \"" + name + "\"");
  co_return co_await serve(e, std::max(min_ttl.value_or(Seconds(0)), min_ttl_), deadline);
}

asio::awaitable<Response> Broker::invalidate(std::string name, Secret reported, SteadyTime deadline) {
  auto e = find(name);
  if (!e) co_return error_response(404, "unknown_credential", "no credential named \"" + name + "\"");
  if (e->state.invalidate(reported.reveal())) {
    spdlog::info("credential {}: token reported invalid by a client; fetching a new one", name);
    poke();
  }
  co_return co_await serve(e, Seconds(0), deadline);
}

asio::awaitable<Response> Broker::revoke(std::string name, SteadyTime deadline) {
  auto e = find(name);
  if (!e) co_return error_response(404, "unknown_credential", "no credential named \"" + name + "\"");
  (void)deadline; // the upstream client's own deadlines bound this call
  if (auto& token = e->state.token()) {
    const SteadyTime now = clock_.now();
    if (!budget_.available(now)) {
      Response r = error_response(503, "upstream_unavailable", "upstream request budget exhausted; try again later");
      r.retry_after = to_seconds_ceil(budget_.next_slot(now) - now);
      co_return r;
    }
    budget_.record(now);
    Secret copy = token->access_token;
    auto failure = co_await upstream_.revoke(e->config.client_id, e->config.client_secret, copy);
    if (failure) {
      spdlog::warn("credential {}: revoke failed: {}", name, failure->message);
      Response r = error_response(503, "upstream_unavailable", "revoke failed: " + failure->message);
      r.retry_after = 1;
      co_return r;
    }
    // Drop only the token we revoked: a refresh may have replaced it meanwhile.
    if (e->state.token() && e->state.token()->access_token.equals(copy)) e->state.drop();
    ++e->generation;
    notify(*e);
    spdlog::info("credential {}: token revoked upstream and dropped", name);
  }
  co_return json_response(R"({"revoked":true})");
}

StatusView Broker::status_view() {
  const SteadyTime now = clock_.now();
  StatusView s;
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
    else if (auto due = e->state.next_due(now); due != SteadyTime::max())
      v.next_refresh = due;
    v.last_refresh_at = e->state.last_refresh_at();
    v.last_error = e->state.last_error();
    v.counters = e->state.counters();
    s.credentials.push_back(std::move(v));
  }
  return s;
}

std::vector<std::string> Broker::not_ready() {
  std::vector<std::string> out;
  const SteadyTime now = clock_.now();
  for (const auto& [name, e] : entries_)
    if (!e->state.has_valid(now)) out.push_back(name);
  return out;
}

} // namespace cltoken

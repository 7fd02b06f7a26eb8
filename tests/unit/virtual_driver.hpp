#pragma once
// The daemon's TokenScheduler (core/token_scheduler.hpp) run in virtual time: this file
// plays the part of daemon/broker, turning the scheduler's actions into events of an
// event queue (a fetch answered after a latency, a waiter's answer, a wake-up) and
// nothing else. Every decision is the real scheduler's, so the guarantees the tests check
// here are the daemon's. Minutes of upstream trouble run in microseconds.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/token_scheduler.hpp"
#include "fake_clock.hpp"

namespace cltoken::test {

/// What a client got: a token (ok) or a 503 with Retry-After.
struct Answer {
  bool ok = false;
  std::string token;
  Seconds expires_in{0};   ///< ok: the time left, rounded down, as the token document says
  SteadyTime expires_at{}; ///< ok: when the token really expires
  Seconds retry_after{0};  ///< not ok
  SteadyTime at{};         ///< when the client got it
  Unavailable why = Unavailable::failing;
  TokenAnswer::Kind kind = TokenAnswer::Kind::unknown;
  std::string message; ///< not ok: what the client is told
};

/// Randomness pinned to one value, or drawn from a seeded engine.
class TestRandom final : public Random {
public:
  double uniform() override { return engine_ ? std::uniform_real_distribution<double>(0.0, 1.0)(*engine_) : u_; }
  void pin(double u) { u_ = u; }
  void seed(std::uint64_t s) { engine_.emplace(s); }

private:
  double u_ = 0.5;
  std::optional<std::mt19937_64> engine_;
};

/// A credential named c<i> for each i, under one upstream.
inline Config make_config(std::size_t credentials, unsigned budget_per_minute, const RefreshPolicy& p) {
  Config c;
  c.upstream.auth_url.text = "https://auth.example.test";
  c.upstream.max_requests_per_minute = budget_per_minute;
  c.refresh.at = p.at;
  c.refresh.jitter = p.jitter;
  c.refresh.min_ttl = p.min_ttl;
  c.refresh.reissue_window = p.reissue_window;
  c.refresh.backoff_initial = p.backoff_initial;
  c.refresh.backoff_max = p.backoff_max;
  for (std::size_t i = 0; i < credentials; ++i) {
    CredentialConfig cred;
    cred.name = "c" + std::to_string(i);
    cred.client_id = "id-" + std::to_string(i);
    c.credentials.push_back(cred);
  }
  return c;
}

class VirtualDriver {
public:
  /// The upstream's answer to a token request for credential `cred` that reaches it at `now`.
  using Script = std::function<UpstreamResult(std::size_t cred, SteadyTime now)>;
  /// How long the upstream takes to answer a request sent at `now` (default: `latency`).
  using Latency = std::function<Millis(std::size_t cred, SteadyTime now)>;
  using Done = std::function<void(const Answer&)>;
  struct Sent {
    std::size_t cred;
    SteadyTime at;
    bool revoke = false;
  };

  VirtualDriver(FakeClock& clock, std::size_t credentials, unsigned budget_per_minute, RefreshPolicy policy, Millis latency,
                Script upstream)
      : VirtualDriver(clock, make_config(credentials, budget_per_minute, policy), latency, std::move(upstream)) {}

  VirtualDriver(FakeClock& clock, const Config& config, Millis latency, Script upstream)
      : clock_(clock), config_(config), budget_(config.upstream.max_requests_per_minute), latency_(latency),
        upstream_(std::move(upstream)), scheduler_(config, budget_, random_, clock.now()) {
    // Quiet: the scheduler's logs for hours of virtual time say nothing a test reads.
    spdlog::set_level(spdlog::level::off);
  }
  ~VirtualDriver() { spdlog::set_level(level_); }
  VirtualDriver(const VirtualDriver&) = delete;
  VirtualDriver& operator=(const VirtualDriver&) = delete;

  /// GET /v1/tokens/{cred}?min_ttl=: answered now or once the scheduler can.
  void ask(std::size_t cred, Seconds min_ttl, Millis timeout, Done done, std::optional<uid_t> peer = 1000) {
    const SteadyTime deadline = clock_.now() + timeout;
    handle(cred, scheduler_.ask(now(), name(cred), min_ttl, deadline, peer), deadline, std::move(done));
  }
  /// POST /v1/tokens/{cred}/invalidate.
  void invalidate(std::size_t cred, const std::string& token, Millis timeout, Done done, std::optional<uid_t> peer = 1000) {
    const SteadyTime deadline = clock_.now() + timeout;
    handle(cred, scheduler_.invalidate(now(), name(cred), Secret(token), deadline, peer), deadline, std::move(done));
  }
  /// POST /v1/tokens/{cred}/refresh (admin): `done` gets kind refreshed or kept with
  /// expires_in, or why not.
  void refresh(std::size_t cred, Millis timeout, Done done, std::optional<uid_t> peer = 0) {
    const SteadyTime deadline = clock_.now() + timeout;
    handle(cred, scheduler_.refresh(now(), name(cred), deadline, peer), deadline, std::move(done));
  }
  /// POST /v1/tokens/{cred}/revoke, answered after the upstream's latency. `done(true)`: revoked.
  void revoke(std::size_t cred, std::function<void(bool)> done = {}) {
    auto start = scheduler_.revoke_begin(now(), name(cred), 0);
    drain();
    using Kind = TokenScheduler::RevokeStart::Kind;
    if (start.kind != Kind::revoke) {
      if (done) done(start.kind == Kind::nothing);
      return;
    }
    record_send(cred, true);
    at(clock_.now() + latency_, [this, ref = *start.credential, token = *start.token, done] {
      auto refused = scheduler_.revoke_end(now(), ref, token, std::nullopt);
      drain();
      if (done) done(!refused);
    });
  }
  /// SIGHUP with `config`.
  void apply(const Config& config) {
    config_ = config;
    scheduler_.apply(now(), config);
    drain();
  }

  /// Runs `f` at virtual time `t` (a client that comes back later, the upstream changing).
  void at(SteadyTime t, std::function<void()> f) { events_.emplace(std::make_pair(t, seq_++), std::move(f)); }

  /// Runs every event up to and including `t`, then leaves the clock at `t`.
  void run_until(SteadyTime t) {
    SteadyTime last = clock_.now();
    unsigned same_instant = 0;
    for (;;) {
      SteadyTime next = scheduler_.next_wake();
      if (!events_.empty()) next = std::min(next, events_.begin()->first.first);
      if (next > t) break;
      if (next > clock_.now()) clock_.advance(next - clock_.now());
      // A scheduler that asks to be woken again and again at one instant is a busy loop.
      same_instant = clock_.now() == last ? same_instant + 1 : 0;
      last = clock_.now();
      if (same_instant > 100000) throw std::logic_error("the scheduler keeps waking at the same instant");
      if (!events_.empty() && events_.begin()->first.first <= clock_.now()) {
        auto f = std::move(events_.begin()->second);
        events_.erase(events_.begin());
        f();
      } else {
        scheduler_.wake(now());
        drain();
      }
      if (check_) check_();
    }
    if (t > clock_.now()) clock_.advance(t - clock_.now());
  }
  void run_for(SteadyClock::duration d) { run_until(clock_.now() + d); }

  /// Called after every event, to check invariants at every step.
  void on_step(std::function<void()> check) { check_ = std::move(check); }
  /// Called as each token request goes out: (credential, whether one is in flight already).
  void on_fetch(std::function<void(std::size_t, bool)> f) { on_fetch_ = std::move(f); }

  [[nodiscard]] const std::vector<Sent>& sent() const { return sent_; }
  [[nodiscard]] std::size_t sent_for(std::size_t cred) const {
    return static_cast<std::size_t>(
        std::count_if(sent_.begin(), sent_.end(), [&](const Sent& s) { return s.cred == cred && !s.revoke; }));
  }
  [[nodiscard]] const CredentialState& state(std::size_t cred) const { return *scheduler_.state(name(cred)); }
  [[nodiscard]] UpstreamBudget& budget() { return budget_; }
  [[nodiscard]] TokenScheduler& scheduler() { return scheduler_; }
  [[nodiscard]] std::size_t waiting(std::size_t cred) const { return scheduler_.waiting(name(cred)); }
  /// Clients not answered yet, with their deadlines.
  [[nodiscard]] const std::map<std::uint64_t, std::pair<SteadyTime, Done>>& pending() const { return pending_; }
  [[nodiscard]] std::size_t in_flight(std::size_t cred) const {
    return static_cast<std::size_t>(
        std::count_if(in_flight_.begin(), in_flight_.end(), [&](const auto& f) { return f.first == cred; }));
  }
  /// The most requests sent within any window of this length (all less than it apart).
  [[nodiscard]] std::size_t max_in_window(Millis window = Millis(60000)) const {
    std::size_t best = 0;
    for (std::size_t i = 0, j = 0; j < sent_.size(); ++j) {
      while (sent_[i].at + window <= sent_[j].at) ++i;
      best = std::max(best, j - i + 1);
    }
    return best;
  }
  /// The u samples given to jitter and backoff (the daemon draws them at random).
  void set_random(double u) { random_.pin(u); }
  void seed_random(std::uint64_t s) { random_.seed(s); }
  void set_latency(Latency l) { latency_fn_ = std::move(l); }
  /// A token store: `answer(cred, newer_than)` is what it holds for a load (newer_than =
  /// SteadyTime::min()) or what the fleet has for a fetch about to go out (nullopt: fetch).
  using Store = std::function<std::optional<CachedToken>(std::size_t cred, SteadyTime newer_than)>;
  void set_store(StoreMode mode, Store answer) {
    scheduler_.set_store(mode);
    store_ = std::move(answer);
  }
  [[nodiscard]] std::size_t fleet_asks() const { return fleet_asks_; }
  [[nodiscard]] static std::string name(std::size_t cred) { return "c" + std::to_string(cred); }

private:
  [[nodiscard]] Now now() const { return {clock_.now(), clock_.wall_now()}; }

  void handle(std::size_t cred, TokenScheduler::Asked asked, SteadyTime deadline, Done done) {
    if (asked.answer) {
      auto a = to_answer(cred, std::move(*asked.answer));
      drain();
      done(a);
      return;
    }
    pending_.emplace(asked.waiter, std::make_pair(deadline, std::move(done)));
    waiter_cred_[asked.waiter] = cred;
    drain();
  }

  Answer to_answer(std::size_t cred, TokenAnswer t) const {
    Answer a;
    a.at = clock_.now();
    a.kind = t.kind;
    if (t.kind == TokenAnswer::Kind::refreshed || t.kind == TokenAnswer::Kind::kept) {
      a.expires_in = t.expires_in;
      a.message = t.message;
      return a;
    }
    if (t.kind != TokenAnswer::Kind::served) {
      a.retry_after = t.retry_after;
      a.why = t.why;
      a.message = t.message;
      return a;
    }
    const auto doc = nlohmann::json::parse(t.document);
    a.ok = true;
    a.token = doc.at("access_token").get<std::string>();
    a.expires_in = Seconds(doc.at("expires_in").get<long>());
    // The document's expires_at is whole wall seconds; the token held tells the instant.
    const auto& held = state(cred).token();
    if (held && held->access_token.equals(a.token)) a.expires_at = held->expires_at;
    return a;
  }

  void record_send(std::size_t cred, bool revoke) { sent_.push_back({cred, clock_.now(), revoke}); }

  std::size_t index(const CredentialRef& c) const { return std::stoul(c.name.substr(1)); }

  /// Performs the scheduler's actions: the only thing daemon/broker does, in virtual time.
  void drain() {
    for (auto actions = scheduler_.take_actions(); !actions.empty(); actions = scheduler_.take_actions()) {
      for (auto& act : actions) {
        if (auto* a = std::get_if<action::Answer>(&act)) {
          auto it = pending_.find(a->waiter);
          if (it == pending_.end()) continue;
          auto done = std::move(it->second.second);
          const std::size_t cred = waiter_cred_.at(a->waiter);
          pending_.erase(it);
          waiter_cred_.erase(a->waiter);
          done(to_answer(cred, std::move(a->answer)));
        } else if (auto* f = std::get_if<action::Fetch>(&act)) {
          const std::size_t cred = index(f->credential);
          const auto flight = std::make_pair(cred, f->credential.serial);
          if (on_fetch_) on_fetch_(cred, std::find(in_flight_.begin(), in_flight_.end(), flight) != in_flight_.end());
          record_send(cred, false);
          in_flight_.push_back(flight);
          const SteadyTime sent = clock_.now();
          const Millis latency = latency_fn_ ? latency_fn_(cred, sent) : latency_;
          at(sent + latency, [this, ref = f->credential, cred, sent, flight] {
            in_flight_.erase(std::find(in_flight_.begin(), in_flight_.end(), flight));
            scheduler_.fetch_done(now(), ref, upstream_(cred, sent));
            drain();
          });
        } else if (auto* r = std::get_if<action::RevokeReported>(&act)) {
          record_send(index(r->credential), true);
          at(clock_.now() + latency_, [this, ref = r->credential] {
            scheduler_.reported_revoked(now(), ref, std::nullopt);
            drain();
          });
        } else if (auto* l = std::get_if<action::Load>(&act)) {
          at(clock_.now() + latency_, [this, ref = l->credential] {
            scheduler_.store_loaded(now(), ref, store_ ? store_(index(ref), SteadyTime::min()) : std::nullopt);
            drain();
          });
        } else if (auto* q = std::get_if<action::AskFleet>(&act)) {
          ++fleet_asks_;
          at(clock_.now() + latency_, [this, ref = q->credential, newer = q->newer_than] {
            scheduler_.fleet_answered(now(), ref, store_ ? store_(index(ref), newer) : std::nullopt);
            drain();
          });
        }
        // Save and Forget need no answer.
      }
    }
  }

  spdlog::level::level_enum level_ = spdlog::get_level();
  FakeClock& clock_;
  Config config_;
  TestRandom random_;
  UpstreamBudget budget_;
  Millis latency_;
  Latency latency_fn_;
  Script upstream_;
  TokenScheduler scheduler_;
  std::map<std::pair<SteadyTime, std::uint64_t>, std::function<void()>> events_;
  std::uint64_t seq_ = 0;
  std::map<std::uint64_t, std::pair<SteadyTime, Done>> pending_;
  std::map<std::uint64_t, std::size_t> waiter_cred_;
  std::vector<std::pair<std::size_t, std::uint64_t>> in_flight_; ///< (credential, serial)
  std::function<void(std::size_t, bool)> on_fetch_;
  std::vector<Sent> sent_;
  std::function<void()> check_;
  Store store_;
  std::size_t fleet_asks_ = 0;
};

/// A grant the way the upstream makes them: a unique token living `lifetime`.
inline TokenGrant make_grant(std::string token, Seconds lifetime) {
  TokenGrant g;
  g.access_token = Secret(std::move(token));
  g.expires_in = lifetime;
  g.scope = "market:all";
  return g;
}

inline UpstreamFailure make_failure(FailureKind kind, std::string message, std::optional<Seconds> retry_after = {}) {
  UpstreamFailure f;
  f.kind = kind;
  f.message = std::move(message);
  f.retry_after = retry_after;
  return f;
}

} // namespace cltoken::test

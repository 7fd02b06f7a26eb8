#pragma once
// The broker's loop (daemon/broker/broker.cpp) over the real core pieces, in virtual time:
// CredentialState decides, plan_fetches picks who gets the budget, RateBudget counts,
// RefreshPolicy times backoffs and 429 pauses. The upstream is a script that answers after
// a fixed latency. Minutes of upstream trouble run in milliseconds, so the contract's
// guarantees about the upstream are checked at every virtual instant, not sampled.
// What it leaves out is only I/O: timers are the event queue, sockets are callbacks.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/credential_state.hpp"
#include "core/fetch_schedule.hpp"
#include "core/rate_budget.hpp"
#include "fake_clock.hpp"

namespace cltoken::test {

/// What a client got: a token (ok) or a 503 with Retry-After.
struct Answer {
  bool ok = false;
  std::string token;
  Seconds expires_in{0};  ///< ok: the time left, rounded down, as the token document says
  SteadyTime expires_at{}; ///< ok: when the token really expires
  Seconds retry_after{0}; ///< not ok
  SteadyTime at{};        ///< when the client got it
};

class VirtualBroker {
public:
  /// The upstream's answer to a token request for credential `cred` that reaches it at `now`.
  using Script = std::function<UpstreamResult(std::size_t cred, SteadyTime now)>;
  using Done = std::function<void(const Answer&)>;
  struct Sent {
    std::size_t cred;
    SteadyTime at;
  };

  VirtualBroker(FakeClock& clock, std::size_t credentials, unsigned budget_per_minute, RefreshPolicy policy,
                Millis latency, Script upstream)
      : clock_(clock), budget_(budget_per_minute), policy_(policy), latency_(latency), upstream_(std::move(upstream)) {
    for (std::size_t i = 0; i < credentials; ++i) creds_.push_back(Cred{CredentialState(policy), {}, 0, {}});
  }

  /// GET /v1/tokens/{cred}?min_ttl=: answered now or once the broker can.
  void ask(std::size_t cred, Seconds min_ttl, Millis timeout, Done done) {
    serve(cred, Waiter{min_ttl, creds_[cred].generation, clock_.now() + timeout, std::move(done)});
  }
  /// POST /v1/tokens/{cred}/invalidate.
  void invalidate(std::size_t cred, const std::string& token, Millis timeout, Done done) {
    creds_[cred].state.invalidate(token);
    ask(cred, Seconds(0), timeout, std::move(done));
  }

  /// Runs `f` at virtual time `t` (a client that comes back later, the upstream changing).
  void at(SteadyTime t, std::function<void()> f) { actions_.push_back({t, std::move(f)}); }

  /// Runs every event up to and including `t`, then leaves the clock at `t`.
  void run_until(SteadyTime t) {
    for (;;) {
      schedule();
      const SteadyTime next = next_event();
      if (next > t) break;
      clock_.advance(next - clock_.now());
      finish_fetches();
      expire_waiters();
      run_actions();
    }
    if (t > clock_.now()) clock_.advance(t - clock_.now());
    schedule();
  }
  void run_for(SteadyClock::duration d) { run_until(clock_.now() + d); }

  [[nodiscard]] const std::vector<Sent>& sent() const { return sent_; }
  [[nodiscard]] std::size_t sent_for(std::size_t cred) const {
    return static_cast<std::size_t>(std::count_if(sent_.begin(), sent_.end(), [&](const Sent& s) { return s.cred == cred; }));
  }
  [[nodiscard]] CredentialState& state(std::size_t cred) { return creds_[cred].state; }
  [[nodiscard]] RateBudget& budget() { return budget_; }
  [[nodiscard]] std::size_t waiting(std::size_t cred) const { return creds_[cred].waiters.size(); }
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
  void set_random(double u) { u_ = u; }

private:
  struct Waiter {
    Seconds min_ttl;
    std::uint64_t generation;
    SteadyTime deadline;
    Done done;
  };
  struct Cred {
    CredentialState state;
    std::vector<Waiter> waiters;
    std::uint64_t generation;
    std::optional<SteadyTime> queued_until;
  };
  struct Action {
    SteadyTime at;
    std::function<void()> f;
  };
  struct InFlight {
    std::size_t cred;
    SteadyTime sent_at;
    SteadyTime done_at;
    UpstreamResult result;
  };

  Answer token_answer(const CredentialState& s) const {
    const auto& t = *s.token();
    return Answer{true, std::string(t.access_token.reveal()), std::chrono::floor<Seconds>(t.expires_at - clock_.now()),
                  t.expires_at, {}, clock_.now()};
  }
  /// Broker::unavailable's Retry-After.
  Answer unavailable(const Cred& c) const {
    const SteadyTime now = clock_.now();
    SteadyTime back = now;
    if (auto r = c.state.retry_at(now)) back = std::max(back, *r);
    if (auto p = budget_.paused_until(now)) back = std::max(back, *p);
    if (c.queued_until) back = std::max(back, *c.queued_until);
    auto s = std::chrono::ceil<Seconds>(back - now);
    return Answer{false, {}, {}, {}, std::max(s, Seconds(1)), now};
  }

  /// Broker::serve: answer now, or park until a fetch finishes or the deadline passes.
  void serve(std::size_t cred, Waiter w) {
    Cred& c = creds_[cred];
    const SteadyTime now = clock_.now();
    const bool waited = c.generation != w.generation;
    ServeDecision d = c.state.decide(now, w.min_ttl, waited, budget_.paused_until(now));
    if (d.action == ServeDecision::Action::serve) {
      c.state.count_served();
      w.done(token_answer(c.state));
    } else if (d.action == ServeDecision::Action::unavailable) {
      w.done(unavailable(c));
    } else {
      c.waiters.push_back(std::move(w));
    }
  }

  /// Broker::schedule, one pass.
  void schedule() {
    const SteadyTime now = clock_.now();
    std::vector<FetchCandidate> due;
    wake_ = SteadyTime::max();
    for (std::size_t i = 0; i < creds_.size(); ++i) {
      Cred& c = creds_[i];
      c.queued_until.reset();
      if (!c.state.fetch_due(now)) {
        wake_ = std::min(wake_, c.state.next_due(now));
        continue;
      }
      FetchCandidate f;
      f.id = i;
      f.starving = !c.waiters.empty() && !c.state.has_valid(now);
      if (c.state.token()) f.expires_at = c.state.token()->expires_at;
      due.push_back(f);
    }
    // As Broker::schedule: no more than max_fetches_in_flight at once; the held ones start
    // when a fetch ends (the next pass after finish_fetches).
    const std::size_t free_slots = max_fetches_in_flight - std::min(max_fetches_in_flight, in_flight_.size());
    FetchPlan plan = plan_fetches(std::move(due), budget_, now, free_slots);
    for (std::size_t id : plan.start) {
      creds_[id].state.fetch_started(now);
      // (plan_fetches started it in the budget; finish_fetches finishes it.)
      sent_.push_back({id, now});
      in_flight_.push_back({id, now, now + latency_, upstream_(id, now)});
    }
    for (const auto& [id, at] : plan.queued) {
      creds_[id].queued_until = at;
      wake_ = std::min(wake_, at);
    }
  }

  /// Broker::fetch, once the answer is in.
  void finish_fetches() {
    const SteadyTime now = clock_.now();
    std::vector<InFlight> done;
    auto it = std::stable_partition(in_flight_.begin(), in_flight_.end(), [&](const InFlight& f) { return f.done_at > now; });
    std::move(it, in_flight_.end(), std::back_inserter(done));
    in_flight_.erase(it, in_flight_.end());
    for (auto& f : done) {
      budget_.finish(now);
      Cred& c = creds_[f.cred];
      if (auto* g = std::get_if<TokenGrant>(&f.result)) {
        strikes_ = 0;
        c.state.fetch_succeeded(std::move(*g), f.sent_at, now, 2 * u_ - 1, u_);
      } else {
        const auto& failure = std::get<UpstreamFailure>(f.result);
        c.state.fetch_failed(failure, now, u_);
        if (failure.kind == FailureKind::rate_limited)
          budget_.pause_until(now + policy_.rate_limit_pause(failure.retry_after, ++strikes_, u_));
      }
      ++c.generation;
      auto waiters = std::move(c.waiters);
      c.waiters.clear();
      for (auto& w : waiters) serve(f.cred, std::move(w));
    }
  }

  void run_actions() {
    const SteadyTime now = clock_.now();
    auto it = std::stable_partition(actions_.begin(), actions_.end(), [&](const Action& a) { return a.at > now; });
    std::vector<Action> due(std::make_move_iterator(it), std::make_move_iterator(actions_.end()));
    actions_.erase(it, actions_.end());
    for (auto& a : due) a.f(); // may add actions: hence the copy
  }

  /// A parked client whose deadline passed: a valid token beats an error.
  void expire_waiters() {
    const SteadyTime now = clock_.now();
    for (Cred& c : creds_) {
      auto it = std::stable_partition(c.waiters.begin(), c.waiters.end(), [&](const Waiter& w) { return w.deadline > now; });
      std::vector<Waiter> late(std::make_move_iterator(it), std::make_move_iterator(c.waiters.end()));
      c.waiters.erase(it, c.waiters.end());
      for (auto& w : late) {
        if (c.state.has_valid(now)) {
          c.state.count_served();
          w.done(token_answer(c.state));
        } else {
          w.done(unavailable(c));
        }
      }
    }
  }

  [[nodiscard]] SteadyTime next_event() const {
    SteadyTime t = wake_;
    for (const auto& f : in_flight_) t = std::min(t, f.done_at);
    for (const auto& a : actions_) t = std::min(t, a.at);
    for (const auto& c : creds_)
      for (const auto& w : c.waiters) t = std::min(t, w.deadline);
    return t;
  }

  FakeClock& clock_;
  RateBudget budget_;
  RefreshPolicy policy_;
  Millis latency_;
  Script upstream_;
  std::vector<Cred> creds_;
  std::vector<InFlight> in_flight_;
  std::vector<Sent> sent_;
  std::vector<Action> actions_;
  SteadyTime wake_ = SteadyTime::max();
  unsigned strikes_ = 0;
  double u_ = 0.5;
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

// Seeded random scenarios on the daemon's TokenScheduler in virtual time. Each seed draws
// a host (credentials, budget, lifetimes, reissue window), an upstream (latencies, 429
// bursts with and without Retry-After, outages, refusals, answers that bring nothing new)
// and clients (asks with every kind of min_ttl and deadline, invalidations, revokes,
// reloads); the upstream guarantees are checked after every event:
//   - no expired token is ever served, nor one past the upstream's own expiry;
//   - no 60 s window holds more requests than the budget, and none is sent during a
//     429's Retry-After;
//   - one request in flight per credential, however many clients wait;
//   - every client is answered, and by its deadline;
//   - in steady state (a healthy upstream, polite clients), one request per token lifetime.
// Some scenarios have a token store: a saved token to load at start, and a fleet of
// daemons asked before each fetch (the store gate).
// A failing seed is printed; CLTOKEN_SCENARIO_SEED=<seed> replays it alone (with the
// scheduler's log when CLTOKEN_SCENARIO_LOG is set), and CLTOKEN_SCENARIOS=<n> sets how
// many run (default 10,000).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "virtual_driver.hpp"

using namespace cltoken;
using namespace cltoken::test;
using namespace std::chrono_literals;

namespace {

/// The first broken guarantee of a scenario, with the virtual time it broke at.
struct Violations {
  const FakeClock& clock;
  SteadyTime t0;
  std::string first;
  void fail(const std::string& what) {
    if (!first.empty()) return;
    std::ostringstream s;
    s << "at t0+" << std::chrono::duration_cast<Millis>(clock.now() - t0).count() << " ms: " << what;
    first = s.str();
  }
};

struct Outcome {
  std::string violation;
  std::size_t requests = 0;
  std::size_t answers = 0;
  std::size_t fleet_asks = 0;
  bool steady = false;
};

template <class T>
T pick(std::mt19937_64& rng, std::initializer_list<T> from) {
  std::uniform_int_distribution<std::size_t> d(0, from.size() - 1);
  return *(from.begin() + static_cast<std::ptrdiff_t>(d(rng)));
}
bool chance(std::mt19937_64& rng, double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }
long between(std::mt19937_64& rng, long lo, long hi) { return std::uniform_int_distribution<long>(lo, hi)(rng); }

Outcome run_scenario(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  FakeClock clock;
  const SteadyTime t0 = clock.now();
  Violations v{clock, t0, {}};
  Outcome out;
  // A fifth of the scenarios are steady state: a healthy upstream and polite clients.
  out.steady = chance(rng, 0.2);

  // ---- the host ------------------------------------------------------------------------
  const std::size_t n = static_cast<std::size_t>(between(rng, 1, 6));
  const unsigned budget = out.steady ? 25u : pick<unsigned>(rng, {1, 2, 3, 5, 10, 25});
  RefreshPolicy policy;
  policy.at = pick(rng, {0.5, 0.75, 0.9});
  policy.jitter = pick(rng, {0.0, 0.05, 0.1});
  policy.backoff_initial = Millis(pick<long>(rng, {100, 1000}));
  policy.backoff_max = Millis(pick<long>(rng, {2000, 8000, 30000}));
  policy.min_ttl = Seconds(pick<long>(rng, {0, 5, 60}));
  std::vector<Seconds> lifetime;
  for (std::size_t c = 0; c < n; ++c) lifetime.push_back(Seconds(pick<long>(rng, {20, 60, 300, 1800})));
  const bool reissue = chance(rng, 0.3);
  const Seconds window = Seconds(pick<long>(rng, {8, 30, 120}));
  if (reissue) policy.reissue_window = window;
  const SteadyClock::duration duration = out.steady ? 2h : Seconds(between(rng, 60, 900));
  Config config = make_config(n, budget, policy);

  // ---- the upstream --------------------------------------------------------------------
  struct Trouble {
    SteadyTime from, to;
    std::optional<UpstreamFailure> failure;
  };
  std::vector<Trouble> trouble;
  if (!out.steady) {
    for (long k = between(rng, 0, 3); k > 0; --k) {
      const SteadyTime from = t0 + Seconds(between(rng, 0, std::chrono::duration_cast<Seconds>(duration).count()));
      const SteadyTime to = from + Seconds(between(rng, 1, 120));
      switch (between(rng, 0, 3)) {
      case 0: {
        std::optional<Seconds> retry;
        if (chance(rng, 0.6)) retry = Seconds(between(rng, 1, 40));
        trouble.push_back({from, to, make_failure(FailureKind::rate_limited, "auth server rate limit reached (429)", retry)});
        break;
      }
      case 1: trouble.push_back({from, to, make_failure(FailureKind::server_error, "auth server error (500)")}); break;
      case 2: trouble.push_back({from, to, make_failure(FailureKind::network_error, "auth server: no answer in time")}); break;
      default:
        trouble.push_back({from, to, make_failure(FailureKind::rejected, "client_id or client_secret rejected (401)")});
        break;
      }
    }
  }
  const double flaky = out.steady ? 0.0 : pick(rng, {0.0, 0.05, 0.3});
  const bool slow = !out.steady && chance(rng, 0.2); // some answers near request_timeout_ms
  std::map<std::string, SteadyTime> true_expiry;     ///< when the upstream stops accepting each token
  struct Current {
    std::string token;
    SteadyTime exp;
  };
  std::map<std::size_t, Current> current;
  std::map<std::size_t, int> issued;
  std::map<std::size_t, int> reused; ///< answers with the token already issued
  SteadyTime pause_until = t0;       ///< no request may be sent before: the last 429's Retry-After
  std::mt19937_64 upstream_rng(seed ^ 0x5eedULL);

  auto issue = [&](std::size_t cred, SteadyTime sent) {
    const std::string token = "s" + std::to_string(seed) + "-c" + std::to_string(cred) + "-" + std::to_string(++issued[cred]);
    // The upstream counts the lifetime from when the request reaches it (after sending).
    current[cred] = {token, sent + lifetime[cred]};
    true_expiry[token] = sent + lifetime[cred];
    return token;
  };
  // A store: some credentials have a token saved before this start; in a fleet, another
  // daemon may have fetched one (or be fetching) when this one is about to.
  const bool with_store = !out.steady && chance(rng, 0.3);
  const bool fleet = with_store && chance(rng, 0.5);
  if (with_store) {
    for (std::size_t c = 0; c < n; ++c) {
      if (!chance(rng, 0.5)) continue;
      const std::string token = "stored-" + std::to_string(seed) + "-c" + std::to_string(c);
      const SteadyTime exp = t0 + Seconds(between(rng, -10, lifetime[c].count()));
      current[c] = {token, exp};
      true_expiry[token] = exp;
    }
  }
  auto upstream = [&](std::size_t cred, SteadyTime sent) -> UpstreamResult {
    const SteadyTime now = clock.now();
    for (const auto& t : trouble) {
      if (sent < t.from || sent >= t.to) continue;
      if (t.failure->kind == FailureKind::rate_limited && t.failure->retry_after)
        pause_until = std::max(pause_until, now + *t.failure->retry_after);
      return *t.failure;
    }
    if (chance(upstream_rng, flaky)) {
      if (chance(upstream_rng, 0.5)) return make_failure(FailureKind::server_error, "auth server error (503)");
      // The current token again: an answer that brings nothing new.
      if (auto it = current.find(cred); it != current.end() && it->second.exp > sent + 2s) {
        ++reused[cred];
        return make_grant(it->second.token, std::chrono::floor<Seconds>(it->second.exp - sent));
      }
    }
    if (reissue) {
      auto it = current.find(cred);
      if (it != current.end() && it->second.exp - sent > window) {
        ++reused[cred];
        return make_grant(it->second.token, std::chrono::floor<Seconds>(it->second.exp - sent));
      }
    }
    return make_grant(issue(cred, sent), lifetime[cred]);
  };

  VirtualDriver d(clock, config, 300ms, upstream);
  if (with_store) {
    d.set_store(StoreMode{true, fleet}, [&](std::size_t cred, SteadyTime newer_than) -> std::optional<CachedToken> {
      if (!chance(upstream_rng, 0.6)) return std::nullopt;
      const SteadyTime now = clock.now();
      if (newer_than != SteadyTime::min() && (!current.count(cred) || current[cred].exp <= now + 1s))
        issue(cred, now); // another daemon of the fleet fetched one
      auto it = current.find(cred);
      if (it == current.end()) return std::nullopt;
      CachedToken t;
      t.access_token = Secret(it->second.token);
      t.lifetime = lifetime[cred];
      t.obtained_at = it->second.exp - lifetime[cred];
      t.expires_at = it->second.exp - CredentialState::expiry_margin;
      if (newer_than != SteadyTime::min() && t.expires_at <= newer_than) return std::nullopt;
      return t;
    });
  }
  if (std::getenv("CLTOKEN_SCENARIO_LOG") != nullptr) spdlog::set_level(spdlog::level::debug); // replaying one seed
  d.seed_random(seed);
  d.set_latency([&](std::size_t, SteadyTime) {
    if (slow && chance(upstream_rng, 0.1)) return Millis(between(upstream_rng, 5000, 10000));
    return Millis(between(upstream_rng, 5, out.steady ? 500 : 3000));
  });

  // ---- the checks, after every event ----------------------------------------------------
  std::size_t checked_sends = 0;
  d.on_step([&] {
    const SteadyTime now = clock.now();
    const auto& sent = d.sent();
    for (; checked_sends < sent.size(); ++checked_sends) {
      const auto& s = sent[checked_sends];
      // Requests within the 60 s before this one, this one included.
      std::size_t in_window = 0;
      for (std::size_t i = checked_sends + 1; i-- > 0 && sent[i].at + 60s > s.at;) ++in_window;
      if (in_window > budget) v.fail(std::to_string(in_window) + " requests within 60 s, budget " + std::to_string(budget));
      if (s.at < pause_until) v.fail("a request sent during a 429's Retry-After");
    }
    for (const auto& [id, p] : d.pending())
      if (p.first < now) v.fail("a client still waiting past its deadline");
  });
  d.on_fetch([&](std::size_t cred, bool already_in_flight) {
    if (already_in_flight) v.fail("a second request in flight for credential " + std::to_string(cred));
  });

  std::map<std::size_t, std::string> last_token;
  auto check_answer = [&](const Answer& a, SteadyTime deadline) {
    ++out.answers;
    if (a.at > deadline) v.fail("a client answered after its deadline");
    if (!a.ok) return;
    if (a.at >= a.expires_at) v.fail("an expired token served");
    auto it = true_expiry.find(a.token);
    if (it == true_expiry.end()) v.fail("a token the upstream never issued");
    else if (a.expires_at > it->second) v.fail("a token served as living longer than the upstream says");
  };

  // ---- the clients ---------------------------------------------------------------------
  const long events = out.steady ? 0 : between(rng, 20, 120);
  for (long k = 0; k < events; ++k) {
    const SteadyTime when = t0 + Millis(between(rng, 0, std::chrono::duration_cast<Millis>(duration).count()));
    const std::size_t cred = static_cast<std::size_t>(between(rng, 0, static_cast<long>(n) - 1));
    const uid_t peer = pick<uid_t>(rng, {0, 1000, 1001});
    const Millis timeout = Millis(pick<long>(rng, {100, 1000, 5000, 15000}));
    const long kind = between(rng, 0, 99);
    const Seconds min_ttl = pick(rng, {0s, 10s, lifetime[cred] / 2, lifetime[cred] + 10s});
    const bool stale = chance(rng, 0.3);
    d.at(when, [&, cred, peer, timeout, kind, min_ttl, stale] {
      const SteadyTime deadline = clock.now() + timeout;
      auto done = [&, cred, deadline](const Answer& a) {
        check_answer(a, deadline);
        if (a.ok) last_token[cred] = a.token;
      };
      if (kind < 60) {
        d.ask(cred, min_ttl, timeout, done, peer);
      } else if (kind < 85) {
        const std::string token = last_token.count(cred) && !stale ? last_token[cred] : "not-a-current-token";
        d.invalidate(cred, token, timeout, done, peer);
      } else if (kind < 92) {
        d.revoke(cred);
      } else {
        // SIGHUP: the same config, or one credential's identity changed (its token dropped).
        Config next = config;
        if (kind % 2 == 0) next.credentials[cred].client_id += "-rotated";
        config = next;
        d.apply(next);
      }
    });
  }
  if (out.steady) {
    // Readers every 7 minutes with the config's min_ttl, as a well-behaved service does.
    for (std::size_t c = 0; c < n; ++c) {
      for (SteadyTime t = t0 + Seconds(c); t < t0 + duration; t += 420s) {
        d.at(t, [&, c] {
          const SteadyTime deadline = clock.now() + 15000ms;
          d.ask(c, policy.min_ttl, 15000ms, [&, deadline](const Answer& a) {
            check_answer(a, deadline);
            if (!a.ok && a.at > t0 + 60s) v.fail("a steady-state reader refused");
          });
        });
      }
    }
  }

  try {
    d.run_until(t0 + duration);
    d.run_until(t0 + duration + 30s); // past every deadline and every answer in flight
  } catch (const std::exception& e) {
    v.fail(e.what());
  }
  if (!d.pending().empty()) v.fail(std::to_string(d.pending().size()) + " clients never answered");
  out.requests = d.sent().size();
  out.fleet_asks = d.fleet_asks();
  if (out.steady) {
    // One request per token lifetime: each one brings a new token (a reissuing upstream
    // may answer one early request with the current token), and they come no closer than
    // the refresh policy allows.
    for (std::size_t c = 0; c < n; ++c) {
      const std::size_t requests = d.sent_for(c) - d.in_flight(c); // answered ones
      if (requests > static_cast<std::size_t>(issued[c]) + static_cast<std::size_t>(std::min(reused[c], 1)))
        v.fail("credential " + std::to_string(c) + ": " + std::to_string(requests) + " requests in steady state for " +
               std::to_string(issued[c]) + " new tokens");
      std::optional<SteadyTime> previous;
      for (const auto& s : d.sent()) {
        if (s.cred != c) continue;
        if (previous && s.at - *previous < lifetime[c] / 4)
          v.fail("credential " + std::to_string(c) + ": two requests " +
                 std::to_string(std::chrono::duration_cast<Millis>(s.at - *previous).count()) + " ms apart in steady state");
        previous = s.at;
      }
      if (requests < static_cast<std::size_t>(duration / lifetime[c]))
        v.fail("credential " + std::to_string(c) + ": not refreshed in time");
    }
  }
  out.violation = v.first;
  return out;
}

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* s = std::getenv(name);
  return s ? std::strtoull(s, nullptr, 10) : fallback;
}

} // namespace

TEST_CASE("seeded random scenarios: the upstream guarantees hold after every event") {
  if (const char* one = std::getenv("CLTOKEN_SCENARIO_SEED")) {
    const std::uint64_t seed = std::strtoull(one, nullptr, 10);
    const Outcome o = run_scenario(seed);
    INFO("seed " << seed << " (" << (o.steady ? "steady" : "trouble") << "): " << o.requests << " requests, " << o.answers
                 << " answers");
    CHECK(o.violation == "");
    return;
  }
  const std::uint64_t count = env_number("CLTOKEN_SCENARIOS", 10000);
  std::size_t requests = 0, answers = 0, steady = 0, fleet_asks = 0;
  for (std::uint64_t seed = 1; seed <= count; ++seed) {
    const Outcome o = run_scenario(seed);
    requests += o.requests;
    answers += o.answers;
    steady += o.steady ? 1 : 0;
    fleet_asks += o.fleet_asks;
    if (!o.violation.empty()) {
      FAIL_CHECK("seed " << seed << " broke a guarantee " << o.violation << " (replay: CLTOKEN_SCENARIO_SEED=" << seed
                         << " unit_tests \"seeded random scenarios*\")");
      break;
    }
  }
  // The scenarios do exercise the scheduler: clients are answered, requests are made.
  CHECK(answers > count * 10);
  CHECK(requests > count * 10);
  CHECK(steady > count / 10);
  CHECK(fleet_asks > count / 10); // the store gate is on the path
}

#pragma once
// The SessionScheduler run in virtual time: this file plays the part of daemon/sessions,
// collecting the core's actions (token requests, revokes, answers) for the test to answer
// as the auth server would, and waking the core when it asks to be woken.
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/session_scheduler.hpp"
#include "fake_clock.hpp"

namespace cltoken::test {

class PinnedRandom final : public Random {
public:
  double uniform() override { return 0.5; }
};

/// One sales channel, "shop", under a budget of `per_minute` upstream requests.
inline Config sessions_config(unsigned per_minute = 25) {
  Config c;
  c.upstream.auth_url.text = "https://auth.example.test";
  c.upstream.max_requests_per_minute = per_minute;
  c.customers.login_burst = 1000;
  CredentialConfig shop;
  shop.name = "shop";
  shop.kind = CredentialKind::sales_channel;
  shop.client_id = "shop-id";
  shop.scope = "market:id:1";
  c.credentials.push_back(shop);
  return c;
}

/// The auth server's grant: a customer token living `lifetime`.
inline TokenGrant customer_grant(const std::string& access, Seconds lifetime, std::optional<std::string> refresh = "refresh-1") {
  TokenGrant g;
  g.access_token = Secret(access);
  g.expires_in = lifetime;
  g.scope = "market:id:1";
  g.owner_id = "cust-1";
  if (refresh) g.refresh_token = Secret(*refresh);
  return g;
}

class SessionHarness {
public:
  explicit SessionHarness(const Config& config = sessions_config())
      : config_(config), budget(config.upstream.max_requests_per_minute), core(config, budget, random, clock.now()) {
    spdlog::set_level(spdlog::level::off);
  }
  ~SessionHarness() { spdlog::set_level(spdlog::level::info); }

  [[nodiscard]] Now now() const { return clock.both(); }
  [[nodiscard]] const CredentialConfig& shop() const { return config_.credentials.front(); }

  /// Collects the actions decided so far.
  void collect() {
    for (auto& a : core.take_actions()) {
      std::visit(
          [this](auto& act) {
            using A = std::decay_t<decltype(act)>;
            if constexpr (std::is_same_v<A, session_action::Answer>) answers[act.op] = std::move(act.answer);
            else if constexpr (std::is_same_v<A, session_action::RequestToken>) requests.push_back(std::move(act));
            else if constexpr (std::is_same_v<A, session_action::Revoke>) revokes.push_back(std::move(act));
            else if constexpr (std::is_same_v<A, session_action::Verify>) verifies.push_back(std::move(act));
            else if constexpr (std::is_same_v<A, session_action::Find>) finds.push_back(std::move(act));
            else if constexpr (std::is_same_v<A, session_action::AskFleet>) asks.push_back(std::move(act));
            else if constexpr (std::is_same_v<A, session_action::Save>) saves.push_back(std::move(act));
            else if constexpr (std::is_same_v<A, session_action::EndInStore>) ends.push_back(std::move(act));
            else drops.push_back(std::move(act));
          },
          a);
    }
  }
  /// The answer to a started request: at once, or the one collected for its op.
  std::optional<SessionAnswer> outcome(const SessionScheduler::Started& s) {
    collect();
    if (s.answer) return s.answer;
    auto it = answers.find(s.op);
    if (it == answers.end()) return std::nullopt;
    return it->second;
  }
  /// Moves virtual time to `t`, waking the core whenever it asked to be woken.
  void run_until(SteadyTime t) {
    for (SteadyTime next = core.next_wake(); next <= t; next = core.next_wake()) {
      if (next > clock.now()) clock.advance(next - clock.now());
      core.wake(now());
      collect();
    }
    if (t > clock.now()) clock.advance(t - clock.now());
  }
  /// Answers the oldest token request still unanswered.
  void answer_request(UpstreamResult result) {
    collect();
    REQUIRE(!requests.empty());
    auto r = std::move(requests.front());
    requests.erase(requests.begin());
    core.token_answered(now(), r.id, std::move(result));
    collect();
  }
  /// A password login for `owner` answered with a token living `lifetime`: the new handle.
  std::string login(uid_t owner, Seconds lifetime, const std::string& access = "access-1") {
    auto started =
        core.create(now(), shop(), owner, R"({"username":"ann@example.test","password":"pw"})", clock.now() + Seconds(5));
    collect();
    REQUIRE(!started.answer);
    answer_request(customer_grant(access, lifetime));
    auto a = outcome(started);
    REQUIRE(a);
    REQUIRE(a->kind == SessionAnswer::Kind::created);
    return nlohmann::json::parse(a->document).at("session").get<std::string>();
  }

  FakeClock clock;
  Config config_;
  PinnedRandom random;
  UpstreamBudget budget;
  SessionScheduler core;
  std::map<std::uint64_t, SessionAnswer> answers;
  std::vector<session_action::RequestToken> requests;
  std::vector<session_action::Revoke> revokes;
  std::vector<session_action::Verify> verifies;
  std::vector<session_action::Find> finds;
  std::vector<session_action::AskFleet> asks;
  std::vector<session_action::Save> saves;
  std::vector<session_action::EndInStore> ends;
  std::vector<session_action::Drop> drops;
};

/// The access token a served or created answer carries.
inline std::string access_token_of(const SessionAnswer& a) {
  return nlohmann::json::parse(a.document).at("access_token").get<std::string>();
}

} // namespace cltoken::test

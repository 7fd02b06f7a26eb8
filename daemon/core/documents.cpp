#include "core/documents.hpp"

#include <algorithm>
#include <ctime>

#include <nlohmann/json.hpp>

namespace cltoken {

using json = nlohmann::ordered_json;

std::string rfc3339(WallTime t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(std::chrono::floor<Seconds>(t));
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {
long seconds_until(SteadyTime t, SteadyTime now) {
  return std::chrono::floor<Seconds>(t - now).count();
}
json optional_time(const std::optional<SteadyTime>& t, SteadyTime now, WallTime wall_now) {
  return t ? json(rfc3339(wall_of(*t, now, wall_now))) : json(nullptr);
}
} // namespace

std::string token_document(const std::string& credential, CredentialKind kind, const CachedToken& token, SteadyTime now,
                           WallTime wall_now) {
  json j{{"credential", credential},
         {"kind", to_string(kind)},
         {"access_token", token.access_token.reveal()},
         {"token_type", token.token_type},
         {"scope", token.scope.empty() ? json(nullptr) : json(token.scope)},
         {"expires_at", rfc3339(wall_of(token.expires_at, now, wall_now))},
         {"expires_in", std::max(0L, seconds_until(token.expires_at, now))}};
  std::string out = j.dump();
  wipe(j["access_token"].get_ref<std::string&>());
  return out;
}

const Secret& TokenDocumentCache::render(const std::string& credential, CredentialKind kind, const CachedToken& token,
                                         SteadyTime now, WallTime wall_now) {
  // The key holds exactly what the document is made of besides the name, which is the
  // cache owner's own: the token (by expiry and value), the kind, and the two times as
  // rendered, to the second.
  const Key key{kind, token.expires_at, std::max(0L, seconds_until(token.expires_at, now)),
                static_cast<long long>(
                    std::chrono::floor<Seconds>(wall_of(token.expires_at, now, wall_now)).time_since_epoch().count())};
  const bool same = key_ && key_->kind == key.kind && key_->expires_at == key.expires_at &&
                    key_->expires_in == key.expires_in && key_->expires_at_wall_s == key.expires_at_wall_s &&
                    token_.reveal() == token.access_token.reveal(); // ours on both sides: no timing to hide
  if (!same) {
    document_ = Secret(token_document(credential, kind, token, now, wall_now));
    token_ = token.access_token;
    key_ = key;
  }
  return document_;
}

std::string customer_token_document(const CustomerSession& s, SteadyTime now, WallTime wall_now, const std::string* handle) {
  json j;
  if (handle != nullptr) j["session"] = *handle;
  j["credential"] = s.credential;
  j["kind"] = to_string(CredentialKind::sales_channel);
  j["access_token"] = s.access_token.reveal();
  j["token_type"] = s.token_type;
  j["scope"] = s.scope.empty() ? json(nullptr) : json(s.scope);
  j["expires_at"] = rfc3339(wall_of(s.expires_at, now, wall_now));
  j["expires_in"] = std::max(0L, seconds_until(s.expires_at, now));
  if (handle != nullptr) j["owner_id"] = s.owner_id;
  std::string out = j.dump();
  wipe(j["access_token"].get_ref<std::string&>());
  if (handle != nullptr) wipe(j["session"].get_ref<std::string&>());
  return out;
}

std::string status_document(const StatusView& s, SteadyTime now, WallTime wall_now) {
  json creds = json::array();
  for (const auto& c : s.credentials) {
    json jc{{"name", c.name},
            {"kind", to_string(c.kind)},
            {"state", to_string(c.state)},
            {"expires_at", optional_time(c.expires_at, now, wall_now)},
            {"expires_in", c.expires_at ? json(seconds_until(*c.expires_at, now)) : json(nullptr)},
            {"next_refresh_in", c.next_refresh ? json(std::max(0L, seconds_until(*c.next_refresh, now))) : json(nullptr)},
            {"last_refresh_at", optional_time(c.last_refresh_at, now, wall_now)},
            {"last_error", c.last_error.empty() ? json(nullptr) : json(c.last_error)},
            {"served", c.counters.served},
            {"upstream_requests", c.counters.upstream_requests},
            {"upstream_failures", c.counters.upstream_failures}};
    creds.push_back(std::move(jc));
  }
  json j{{"version", s.version},
         {"started_at", rfc3339(s.started_at)},
         {"uptime_s", std::chrono::floor<Seconds>(now - s.started_steady).count()},
         {"upstream",
          {{"auth_url", s.auth_url},
           {"requests_last_minute", s.requests_last_minute},
           {"budget_per_minute", s.budget_per_minute},
           {"rate_limited_until", optional_time(s.rate_limited_until, now, wall_now)}}},
         {"credentials", std::move(creds)}};
  if (s.customers && s.customers->in_use()) {
    const auto& c = *s.customers;
    json jc{{"sessions", c.sessions},           {"max_sessions", c.max_sessions}, {"evicted_lru", c.evicted_lru},
            {"evicted_idle", c.evicted_idle},   {"ended", c.ended},               {"expired", c.expired}};
    for (const auto& [outcome, n] : c.logins) jc["logins_" + outcome] = n;
    for (const auto& [outcome, n] : c.refreshes) jc["refreshes_" + outcome] = n;
    j["customers"] = std::move(jc);
  }
  return j.dump();
}

std::string health_document(bool ready, const std::vector<std::string>& not_ready) {
  json j{{"live", true}, {"ready", ready}};
  if (!not_ready.empty()) j["credentials_not_ready"] = not_ready;
  return j.dump();
}

} // namespace cltoken

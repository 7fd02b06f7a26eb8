#include "core/documents.hpp"

#include <algorithm>
#include <ctime>

#include <nlohmann/json.hpp>

#include "core/json_text.hpp"

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
long seconds_until(SteadyTime t, SteadyTime now) { return std::chrono::floor<Seconds>(t - now).count(); }
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

std::string TokenDocumentCache::render(const std::string& credential, CredentialKind kind, const CachedToken& token,
                                       SteadyTime now, WallTime wall_now) {
  if (auto pieces = held(credential, kind, token, json_verbatim(token.access_token.reveal()), now, wall_now))
    return pieces->joined();
  return token_document(credential, kind, token, now, wall_now);
}

std::optional<HeldBody> TokenDocumentCache::held(const std::string& credential, CredentialKind kind, const CachedToken& token,
                                                 bool verbatim, SteadyTime now, WallTime wall_now) {
  const std::string_view value = token.access_token.reveal();
  if (!verbatim) return std::nullopt;
  // The key holds exactly what the two parts are made of besides the name, which is the
  // cache owner's own: the kind, the token's type and scope, and the two times as
  // rendered, to the second.
  const long expires_in = std::max(0L, seconds_until(token.expires_at, now));
  const auto expires_at_wall_s =
      static_cast<long long>(std::chrono::floor<Seconds>(wall_of(token.expires_at, now, wall_now)).time_since_epoch().count());
  // Compared in place: building a Key would copy the scope on every request.
  if (!key_ || key_->kind != kind || key_->expires_at != token.expires_at || key_->expires_in != expires_in ||
      key_->expires_at_wall_s != expires_at_wall_s || key_->token_type != token.token_type || key_->scope != token.scope) {
    // Rendered around an empty token: its two quotes are where the parts meet. The
    // marker cannot occur earlier: the only string before it, the name, is escaped, so
    // any quote in it comes with a backslash.
    CachedToken blank;
    blank.token_type = token.token_type;
    blank.scope = token.scope;
    blank.expires_at = token.expires_at;
    const std::string whole = token_document(credential, kind, blank, now, wall_now);
    constexpr std::string_view marker = R"("access_token":"")";
    const auto at = whole.find(marker);
    head_.assign(whole, 0, at + marker.size() - 1);
    tail_.assign(whole, at + marker.size() - 1);
    key_ = Key{kind, token.expires_at, expires_in, expires_at_wall_s, token.token_type, token.scope};
  }
  return HeldBody{{head_, value, tail_}};
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

std::string status_document(const StatusView& s, SteadyTime now, WallTime wall_now, bool detailed) {
  json creds = json::array();
  for (const auto& c : s.credentials) {
    json jc{{"name", c.name},
            {"kind", to_string(c.kind)},
            {"state", to_string(c.state)},
            {"expires_at", optional_time(c.expires_at, now, wall_now)},
            {"expires_in", c.expires_at ? json(seconds_until(*c.expires_at, now)) : json(nullptr)}};
    if (detailed) {
      jc["next_refresh_in"] = c.next_refresh ? json(std::max(0L, seconds_until(*c.next_refresh, now))) : json(nullptr);
      jc["last_refresh_at"] = optional_time(c.last_refresh_at, now, wall_now);
      jc["last_error"] = c.last_error.empty() ? json(nullptr) : json(c.last_error);
      jc["served"] = c.counters.served;
      jc["upstream_requests"] = c.counters.upstream_requests;
      jc["upstream_failures"] = c.counters.upstream_failures;
    }
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
    json jc{{"sessions", c.sessions},
            {"max_sessions", c.max_sessions},
            {"evicted_lru", c.evicted_lru},
            {"evicted_idle", c.evicted_idle},
            {"ended", c.ended},
            {"expired", c.expired},
            {"ended_elsewhere", c.ended_elsewhere},
            {"from_store", c.from_store}};
    for (const auto& [outcome, n] : c.logins) jc["logins_" + outcome] = n;
    for (const auto& [outcome, n] : c.refreshes) jc["refreshes_" + outcome] = n;
    j["customers"] = std::move(jc);
  }
  if (s.verification) {
    const auto& v = *s.verification;
    j["verification"] = {{"mode", v.mode},
                         {"keys", v.keys},
                         {"unverified_tokens", v.unverified_tokens},
                         {"key_set_error", v.key_set_error.empty() ? json(nullptr) : json(v.key_set_error)}};
  }
  return j.dump();
}

std::string credentials_document(const std::vector<const CredentialConfig*>& credentials) {
  json list = json::array();
  for (const CredentialConfig* c : credentials) {
    list.push_back({{"name", c->name},
                    {"kind", to_string(c->kind)},
                    {"client_id", c->client_id},
                    {"scope", c->scope.empty() ? json(nullptr) : json(c->scope)}});
  }
  return json{{"credentials", std::move(list)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string health_document(bool ready, const std::vector<std::string>& not_ready) {
  json j{{"live", true}, {"ready", ready}};
  if (!not_ready.empty()) j["credentials_not_ready"] = not_ready;
  return j.dump();
}

} // namespace cltoken

namespace cltoken {

std::string clients_document(const ClientUsage& usage, SteadyTime now, WallTime wall_now,
                             const std::function<std::optional<std::string>(uid_t)>& user_name) {
  json list = json::array();
  for (const ClientUsage::Row& r : usage.rows(now)) {
    auto user = user_name(r.uid);
    std::string principal = r.unit ? "unit:" + *r.unit : user ? "user:" + *user : "uid:" + std::to_string(r.uid);
    list.push_back({{"principal", std::move(principal)},
                    {"unit", r.unit ? json(*r.unit) : json(nullptr)},
                    {"uid", r.uid},
                    {"user", user ? json(*user) : json(nullptr)},
                    {"credential", r.credential},
                    {"requests", r.requests},
                    {"refused", r.refused},
                    {"first_seen", rfc3339(wall_of(r.first_seen, now, wall_now))},
                    {"last_seen", rfc3339(wall_of(r.last_seen, now, wall_now))}});
  }
  return json{{"window_s", std::chrono::duration_cast<Seconds>(usage.window()).count()},
              {"capacity", usage.capacity()},
              {"evicted", usage.evicted()},
              {"clients", std::move(list)}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace cltoken

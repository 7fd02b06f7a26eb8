#include "core/documents.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/json_text.hpp"

namespace cltoken {

using json = nlohmann::ordered_json;

namespace {
/// rfc3339() written into `buf`, for a document that appends it without a string of its own.
std::string_view rfc3339_into(WallTime t, std::array<char, 32>& buf) {
  std::time_t tt = std::chrono::system_clock::to_time_t(std::chrono::floor<Seconds>(t));
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return {buf.data(), std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm)};
}
} // namespace

std::string rfc3339(WallTime t) {
  std::array<char, 32> buf{};
  return std::string(rfc3339_into(t, buf));
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

namespace {
/// A string as a JSON document writes it, quotes included. One JSON carries as it is (a
/// JWT, a handle, a name: json_verbatim) is only pointed at; any other is escaped by
/// nlohmann, so its bytes, and the type_error thrown for invalid UTF-8, are dump()'s. The
/// escaped copy is wiped when dropped: the string may be a token.
class JsonString {
public:
  explicit JsonString(std::string_view s) : bare_(s) {
    if (json_verbatim(s)) return;
    json j = std::string(s);
    try {
      escaped_ = j.dump();
    } catch (...) {
      wipe(j.get_ref<std::string&>());
      throw;
    }
    wipe(j.get_ref<std::string&>());
  }
  JsonString(const JsonString&) = delete;
  JsonString& operator=(const JsonString&) = delete;
  ~JsonString() { wipe(escaped_); }

  [[nodiscard]] std::size_t size() const { return escaped_.empty() ? bare_.size() + 2 : escaped_.size(); }
  void append_to(std::string& out) const {
    if (!escaped_.empty()) {
      out += escaped_;
      return;
    }
    out += '"';
    out += bare_;
    out += '"';
  }

private:
  std::string_view bare_;
  std::string escaped_; ///< empty when bare_ is written as it is (an escaped string has its quotes)
};

/// The two passes over a document's pieces: counting its bytes, then appending them to a
/// string reserved to that size, which never moves (a move would leave a token's copy behind).
struct CountBytes {
  std::size_t n = 0;
  void operator()(std::string_view piece) { n += piece.size(); }
  void operator()(const JsonString& s) { n += s.size(); }
};
struct Append {
  std::string& out;
  void operator()(std::string_view piece) { out += piece; }
  void operator()(const JsonString& s) { s.append_to(out); }
};
} // namespace

std::string customer_token_document(const CustomerSession& s, SteadyTime now, WallTime wall_now, const std::string* handle) {
  // Written directly, not through a json object: storefronts read their session on every
  // page render, and building, dumping and wiping one was four fifths of a read's
  // instructions. The bytes are those ordered_json::dump() wrote (unit-tested against it),
  // the token is copied only into the answer, and nothing is kept per session. Strings are
  // escaped in document order, so invalid UTF-8 throws about the one dump() threw about.
  std::optional<JsonString> session, owner_id;
  if (handle != nullptr) session.emplace(*handle);
  const JsonString credential(s.credential), kind(to_string(CredentialKind::sales_channel)), token(s.access_token.reveal()),
      token_type(s.token_type), scope(s.scope);
  if (handle != nullptr) owner_id.emplace(s.owner_id);
  std::array<char, 32> at_buf{};
  const std::string_view expires_at = rfc3339_into(wall_of(s.expires_at, now, wall_now), at_buf); // digits, '-', ':', T, Z
  std::array<char, 24> in_buf{};
  const auto in_end = std::to_chars(in_buf.begin(), in_buf.end(), std::max(0L, seconds_until(s.expires_at, now))).ptr;
  const std::string_view expires_in(in_buf.data(), static_cast<std::size_t>(in_end - in_buf.data()));

  auto document = [&](auto&& put) {
    put("{");
    if (session) {
      put(R"("session":)");
      put(*session);
      put(",");
    }
    put(R"("credential":)");
    put(credential);
    put(R"(,"kind":)");
    put(kind);
    put(R"(,"access_token":)");
    put(token);
    put(R"(,"token_type":)");
    put(token_type);
    put(R"(,"scope":)");
    if (s.scope.empty()) put("null");
    else put(scope);
    put(R"(,"expires_at":")");
    put(expires_at);
    put(R"(","expires_in":)");
    put(expires_in);
    if (owner_id) {
      put(R"(,"owner_id":)");
      put(*owner_id);
    }
    put("}");
  };
  CountBytes size;
  document(size);
  std::string out;
  out.reserve(size.n);
  document(Append{out});
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

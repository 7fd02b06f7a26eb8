#include "core/metrics.hpp"

#include <iterator>
#include <vector>

#include <fmt/format.h>

namespace cltoken {

bool refresh_overdue(const CredentialView& c, SteadyTime now) {
  const bool valid = c.expires_at && *c.expires_at > now;
  if (!valid) return false;
  switch (c.state) {
  case CredentialStatus::stale:
  case CredentialStatus::failing: return true;
  case CredentialStatus::refreshing: return !c.last_error.empty(); // a retry: the last attempt failed
  default: return false;
  }
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    switch (ch) {
    case '\\': out += "\\\\"; break;
    case '"': out += "\\\""; break;
    case '\n': out += "\\n"; break;
    default: out += ch;
    }
  }
  return out;
}

void Metrics::observe_request(std::string_view route, unsigned code, double seconds) {
  const std::pair<std::string_view, unsigned> key{route, code};
  auto it = requests_.find(key);
  if (it == requests_.end()) it = requests_.emplace(std::pair<std::string, unsigned>{route, code}, 0).first;
  ++it->second;
  request_duration_.observe(seconds);
}

namespace {

constexpr unsigned refused_codes[] = {400, 408, 413, 429};

} // namespace

void Metrics::count_refused(unsigned code) {
  for (std::size_t i = 0; i < std::size(refused_codes); ++i)
    if (refused_codes[i] == code) ++refused_[i];
}

namespace {

constexpr const char* outcome_names[] = {"ok",     "rate_limited", "rejected", "server_error", "network_error", "invalid_token",
                                         "no_gain"};
static_assert(std::size(outcome_names) == std::tuple_size_v<decltype(CredentialCounters::outcomes)>);
static_assert(std::string_view(outcome_names[CredentialCounters::no_gain_outcome]) == "no_gain");
constexpr CredentialStatus all_states[] = {CredentialStatus::empty,      CredentialStatus::fetching, CredentialStatus::fresh,
                                           CredentialStatus::refreshing, CredentialStatus::stale,    CredentialStatus::expired,
                                           CredentialStatus::failing};

class Exposition {
public:
  explicit Exposition(std::string& out) : out_(out) {}

  /// "# HELP" and "# TYPE" lines of one family; every family has both, even when it has
  /// no sample yet, so a scraper knows the type from the first scrape.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    put("# HELP cl_tokend_{} {}\n# TYPE cl_tokend_{} {}\n", name, help, name, type);
  }
  template <typename... Args>
  void put(fmt::format_string<Args...> f, Args&&... args) {
    fmt::format_to(std::back_inserter(out_), f, std::forward<Args>(args)...);
  }
  template <std::size_t N>
  void histogram(std::string_view name, std::string_view help, const Histogram<N>& h) {
    family(name, "histogram", help);
    for (std::size_t i = 0; i < N; ++i) put("cl_tokend_{}_bucket{{le=\"{}\"}} {}\n", name, h.bounds()[i], h.at_most(i));
    put("cl_tokend_{}_bucket{{le=\"+Inf\"}} {}\n", name, h.count());
    put("cl_tokend_{}_sum {:.6f}\n", name, h.sum());
    put("cl_tokend_{}_count {}\n", name, h.count());
  }

private:
  std::string& out_;
};

double seconds_between(SteadyTime from, SteadyTime to) { return std::chrono::duration<double>(to - from).count(); }

} // namespace

std::string Metrics::render(const StatusView& s, SteadyTime now, unsigned budget_remaining, bool detailed) const {
  std::string out;
  out.reserve(8192);
  Exposition x(out);
  // Credential names are [A-Za-z0-9._-] by config, but a label is escaped all the same:
  // one odd name must not make the whole scrape unparseable.
  std::vector<std::string> names;
  names.reserve(s.credentials.size());
  for (const auto& c : s.credentials) names.push_back(escape_label_value(c.name));

  x.family("build_info", "gauge", "Always 1; the version label says which cl-tokend is running.");
  x.put("cl_tokend_build_info{{version=\"{}\"}} 1\n", escape_label_value(s.version));

  x.family("uptime_seconds", "gauge", "Seconds since the daemon started.");
  x.put("cl_tokend_uptime_seconds {:.3f}\n", seconds_between(s.started_steady, now));

  x.family("tokens_served_total", "counter", "Token documents handed to clients.");
  if (detailed) {
    for (std::size_t i = 0; i < s.credentials.size(); ++i)
      x.put("cl_tokend_tokens_served_total{{credential=\"{}\"}} {}\n", names[i], s.credentials[i].counters.served);
  } else {
    std::uint64_t served = 0;
    for (const auto& c : s.credentials) served += c.counters.served;
    x.put("cl_tokend_tokens_served_total {}\n", served);
  }

  x.family("upstream_requests_total", "counter", "Token requests sent to the auth server, by outcome.");
  if (detailed) {
    for (std::size_t i = 0; i < s.credentials.size(); ++i)
      for (std::size_t o = 0; o < std::size(outcome_names); ++o)
        x.put("cl_tokend_upstream_requests_total{{credential=\"{}\",outcome=\"{}\"}} {}\n", names[i], outcome_names[o],
              s.credentials[i].counters.outcomes[o]);
  } else {
    for (std::size_t o = 0; o < std::size(outcome_names); ++o) {
      std::uint64_t n = 0;
      for (const auto& c : s.credentials) n += c.counters.outcomes[o];
      x.put("cl_tokend_upstream_requests_total{{outcome=\"{}\"}} {}\n", outcome_names[o], n);
    }
  }

  x.family("credential_state", "gauge", "1 for the state each credential is in, 0 for the others.");
  for (std::size_t i = 0; i < s.credentials.size(); ++i)
    for (CredentialStatus state : all_states)
      x.put("cl_tokend_credential_state{{credential=\"{}\",state=\"{}\"}} {}\n", names[i], to_string(state),
            s.credentials[i].state == state ? 1 : 0);

  x.family("token_expiry_seconds", "gauge",
           "Seconds until the held token expires (negative once expired); absent while no token is held.");
  for (std::size_t i = 0; i < s.credentials.size(); ++i)
    if (const auto& at = s.credentials[i].expires_at)
      x.put("cl_tokend_token_expiry_seconds{{credential=\"{}\"}} {:.3f}\n", names[i], seconds_between(now, *at));

  x.family("token_valid", "gauge", "1 when the credential holds a token that has not expired (it can be served).");
  for (std::size_t i = 0; i < s.credentials.size(); ++i) {
    const auto& at = s.credentials[i].expires_at;
    x.put("cl_tokend_token_valid{{credential=\"{}\"}} {}\n", names[i], at && *at > now ? 1 : 0);
  }

  x.family("refresh_overdue", "gauge",
           "1 when the token is still valid but its refresh is overdue (stale, failing, or retrying after a failure).");
  for (std::size_t i = 0; i < s.credentials.size(); ++i)
    x.put("cl_tokend_refresh_overdue{{credential=\"{}\"}} {}\n", names[i], refresh_overdue(s.credentials[i], now) ? 1 : 0);

  if (detailed) {
    x.family("last_refresh_age_seconds", "gauge",
             "Seconds since the last token was obtained from the auth server; absent until the first one.");
    for (std::size_t i = 0; i < s.credentials.size(); ++i)
      if (const auto& at = s.credentials[i].last_refresh_at)
        x.put("cl_tokend_last_refresh_age_seconds{{credential=\"{}\"}} {:.3f}\n", names[i], seconds_between(*at, now));
  }

  x.family("jwks_requests_total", "counter",
           "Requests for the auth server's signing keys, by outcome (ok, failed, refused); outside the token budget.");
  for (const char* outcome : {"ok", "failed", "refused"}) {
    auto it = jwks_.find(outcome);
    x.put("cl_tokend_jwks_requests_total{{outcome=\"{}\"}} {}\n", outcome, it == jwks_.end() ? 0 : it->second);
  }

  if (s.verification) {
    x.family("signing_keys", "gauge", "Signing keys of the auth server held; 0 means token signatures cannot be checked now.");
    x.put("cl_tokend_signing_keys {}\n", s.verification->keys);
    x.family("unverified_tokens_total", "counter",
             "Tokens served or stored with their signature unchecked (verify = when_available, key set unavailable).");
    x.put("cl_tokend_unverified_tokens_total {}\n", s.verification->unverified_tokens);
  }

  x.family("upstream_budget_remaining", "gauge", "Upstream requests left in the sliding 60 s window.");
  x.put("cl_tokend_upstream_budget_remaining {}\n", budget_remaining);

  x.family("upstream_budget_per_minute", "gauge",
           "The most upstream requests sent in any 60 s window (max_requests_per_minute).");
  x.put("cl_tokend_upstream_budget_per_minute {}\n", s.budget_per_minute);

  x.family("upstream_rate_limited", "gauge", "1 while every upstream request is paused after a 429 from the auth server.");
  x.put("cl_tokend_upstream_rate_limited {}\n", s.rate_limited_until ? 1 : 0);

  x.histogram("upstream_request_duration_seconds", "Time from sending a token request to the auth server to its outcome.",
              upstream_duration_);

  x.family("connections", "gauge", "Open client connections on the socket.");
  x.put("cl_tokend_connections {}\n", connections_);

  x.family("requests_total", "counter", "Requests answered on the socket, by route and HTTP status code.");
  for (const auto& [key, n] : requests_)
    x.put("cl_tokend_requests_total{{route=\"{}\",code=\"{}\"}} {}\n", escape_label_value(key.first), key.second, n);
  x.family("requests_refused_total", "counter",
           "Requests answered before routing, by HTTP status code: malformed, too slow, too large, too many in progress.");
  for (std::size_t i = 0; i < std::size(refused_codes); ++i)
    x.put("cl_tokend_requests_refused_total{{code=\"{}\"}} {}\n", refused_codes[i], refused_[i]);

  x.histogram("request_duration_seconds", "Time from a complete request on the socket to its answer.", request_duration_);

  if (s.customers) { // counts only: never a session handle, token or customer
    const auto& c = *s.customers;
    x.family("customer_sessions", "gauge", "Customer sessions held.");
    x.put("cl_tokend_customer_sessions {}\n", c.sessions);
    x.family("customer_sessions_max", "gauge", "The most customer sessions held ([customers] max_sessions).");
    x.put("cl_tokend_customer_sessions_max {}\n", c.max_sessions);
    x.family("customer_session_evictions_total", "counter",
             "Customer sessions dropped by the daemon: lru (over max_sessions) or idle (unused for idle_timeout_s).");
    x.put("cl_tokend_customer_session_evictions_total{{reason=\"lru\"}} {}\n", c.evicted_lru);
    x.put("cl_tokend_customer_session_evictions_total{{reason=\"idle\"}} {}\n", c.evicted_idle);
    x.family("customer_sessions_ended_total", "counter",
             "Customer sessions ended: logout (by their owner), expired (the auth server refused the refresh token) or "
             "elsewhere (a logout on another daemon sharing the store).");
    x.put("cl_tokend_customer_sessions_ended_total{{reason=\"logout\"}} {}\n", c.ended);
    x.put("cl_tokend_customer_sessions_ended_total{{reason=\"expired\"}} {}\n", c.expired);
    x.put("cl_tokend_customer_sessions_ended_total{{reason=\"elsewhere\"}} {}\n", c.ended_elsewhere);
    x.family("customer_sessions_from_store_total", "counter",
             "Customer sessions read back from the store: at start, or created by another daemon sharing it.");
    x.put("cl_tokend_customer_sessions_from_store_total {}\n", c.from_store);
    x.family("customer_logins_total", "counter", "Customer session creations, by outcome.");
    for (const auto& [outcome, n] : c.logins) x.put("cl_tokend_customer_logins_total{{outcome=\"{}\"}} {}\n", outcome, n);
    x.family("customer_refreshes_total", "counter",
             "Customer token refreshes, by outcome: ok, expired, failed (sent to the auth server), fleet (another daemon's "
             "refresh taken from the store, no request).");
    for (const auto& [outcome, n] : c.refreshes) x.put("cl_tokend_customer_refreshes_total{{outcome=\"{}\"}} {}\n", outcome, n);
  }
  return out;
}

} // namespace cltoken

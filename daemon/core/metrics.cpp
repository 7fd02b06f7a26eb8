#include "core/metrics.hpp"

#include <fmt/format.h>

namespace cltoken {

void Metrics::observe_request(const std::string& route, unsigned code, double seconds) {
  ++requests_[{route, code}];
  ++duration_count_;
  duration_sum_ += seconds;
  for (std::size_t i = 0; i < buckets.size(); ++i)
    if (seconds <= buckets[i]) ++bucket_counts_[i];
}

namespace {
constexpr const char* outcome_names[] = {"ok", "rate_limited", "rejected", "server_error", "network_error"};

void header(std::string& out, const char* name, const char* type, const char* help) {
  fmt::format_to(std::back_inserter(out), "# HELP cl_tokend_{} {}\n# TYPE cl_tokend_{} {}\n", name, help, name, type);
}
template <typename... Args>
void put(std::string& out, fmt::format_string<Args...> f, Args&&... args) {
  fmt::format_to(std::back_inserter(out), f, std::forward<Args>(args)...);
}
} // namespace

std::string Metrics::render(const StatusView& s, SteadyTime now, unsigned budget_remaining) const {
  std::string out;
  out.reserve(4096);

  header(out, "tokens_served_total", "counter", "Tokens handed to clients.");
  for (const auto& c : s.credentials) put(out, "cl_tokend_tokens_served_total{{credential=\"{}\"}} {}\n", c.name, c.counters.served);

  header(out, "upstream_requests_total", "counter", "Token requests sent to the auth server, by outcome.");
  for (const auto& c : s.credentials)
    for (std::size_t i = 0; i < c.counters.outcomes.size(); ++i)
      put(out, "cl_tokend_upstream_requests_total{{credential=\"{}\",outcome=\"{}\"}} {}\n", c.name, outcome_names[i],
          c.counters.outcomes[i]);

  header(out, "token_expiry_seconds", "gauge", "Seconds until the cached token expires (negative when expired).");
  for (const auto& c : s.credentials)
    if (c.expires_at)
      put(out, "cl_tokend_token_expiry_seconds{{credential=\"{}\"}} {:.3f}\n", c.name,
          std::chrono::duration<double>(*c.expires_at - now).count());

  header(out, "token_valid", "gauge", "1 when the credential holds a token that has not expired.");
  for (const auto& c : s.credentials)
    put(out, "cl_tokend_token_valid{{credential=\"{}\"}} {}\n", c.name, c.expires_at && *c.expires_at > now ? 1 : 0);

  header(out, "refresh_overdue", "gauge", "1 when the token is valid but its refresh time has passed (state stale or failing).");
  for (const auto& c : s.credentials) {
    const bool overdue = c.expires_at && *c.expires_at > now &&
                         (c.state == CredentialStatus::stale || c.state == CredentialStatus::failing);
    put(out, "cl_tokend_refresh_overdue{{credential=\"{}\"}} {}\n", c.name, overdue ? 1 : 0);
  }

  header(out, "last_refresh_age_seconds", "gauge", "Seconds since the last successful refresh.");
  for (const auto& c : s.credentials)
    if (c.last_refresh_at)
      put(out, "cl_tokend_last_refresh_age_seconds{{credential=\"{}\"}} {:.3f}\n", c.name,
          std::chrono::duration<double>(now - *c.last_refresh_at).count());

  header(out, "upstream_budget_remaining", "gauge", "Upstream requests left in the sliding 60 s window.");
  put(out, "cl_tokend_upstream_budget_remaining {}\n", budget_remaining);

  header(out, "upstream_rate_limited", "gauge", "1 while upstream requests are paused after a 429.");
  put(out, "cl_tokend_upstream_rate_limited {}\n", s.rate_limited_until ? 1 : 0);

  header(out, "connections", "gauge", "Open client connections.");
  put(out, "cl_tokend_connections {}\n", connections_);

  header(out, "requests_total", "counter", "Requests answered on the socket, by route and status code.");
  for (const auto& [key, n] : requests_) put(out, "cl_tokend_requests_total{{route=\"{}\",code=\"{}\"}} {}\n", key.first, key.second, n);

  header(out, "request_duration_seconds", "histogram", "Time from a complete request to its answer.");
  for (std::size_t i = 0; i < buckets.size(); ++i)
    put(out, "cl_tokend_request_duration_seconds_bucket{{le=\"{}\"}} {}\n", buckets[i], bucket_counts_[i]);
  put(out, "cl_tokend_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", duration_count_);
  put(out, "cl_tokend_request_duration_seconds_sum {:.6f}\n", duration_sum_);
  put(out, "cl_tokend_request_duration_seconds_count {}\n", duration_count_);

  header(out, "uptime_seconds", "gauge", "Seconds since the daemon started.");
  put(out, "cl_tokend_uptime_seconds {:.3f}\n", std::chrono::duration<double>(now - s.started_steady).count());
  return out;
}

} // namespace cltoken

#pragma once
// Prometheus text exposition (format 0.0.4) of the daemon's counters. Request counters and
// the latency histograms live here; everything per credential is read from a StatusView
// at scrape time, so there is one source of truth. docs/monitoring.md lists every family.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "core/documents.hpp"
#include "core/metrics_histogram.hpp"

namespace cltoken {

/// 1 when the credential's token is still valid but should already have been replaced:
/// state stale or failing, or refreshing again after a failed attempt. A plain "refreshing"
/// (the first attempt, under way) is not overdue, so the gauge does not blink at every
/// normal refresh; a retry is, so the gauge stays 1 through a run of failures instead of
/// dropping to 0 whenever a retry is in flight (which would reset an alert's `for:`).
[[nodiscard]] bool refresh_overdue(const CredentialView& credential, SteadyTime now);

/// A label value escaped for the text format: backslash, double quote and newline.
[[nodiscard]] std::string escape_label_value(std::string_view value);

class Metrics {
public:
  /// Request latency upper bounds, in seconds: a cached token is served in well under a
  /// millisecond; a client that waits for the upstream takes up to the request timeout.
  static constexpr std::array<double, 16> request_buckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                          0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
  /// Upstream (auth server) latency upper bounds, in seconds, up to a long request timeout.
  static constexpr std::array<double, 11> upstream_buckets{0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0};

  /// One answered request on the socket: its route label, HTTP status and duration.
  void observe_request(std::string_view route, unsigned code, double seconds);
  /// One token request to the auth server, from send to answer (or failure).
  void observe_upstream(double seconds) { upstream_duration_.observe(seconds); }
  void set_connections(std::size_t n) { connections_ = n; }
  /// A request answered before routing: 400 malformed, 408 too slow, 413 too large, 429
  /// over max_requests_per_peer. Other codes are not counted.
  void count_refused(unsigned code);
  /// One request for the auth server's key set: "ok", "failed" or "refused".
  void count_jwks(const std::string& outcome) { ++jwks_[outcome]; }

  /// The whole exposition. `budget_remaining`: upstream requests left in the window.
  /// `detailed`: for admins and server.metrics_allow. Other peers get what /v1/status shows
  /// them per credential (state, validity, expiry) and the daemon-wide totals of the rest:
  /// served counts and upstream requests without the credential label, and no refresh
  /// times, since how often a credential is used and refreshed is not theirs to see.
  [[nodiscard]] std::string render(const StatusView& status, SteadyTime now, unsigned budget_remaining,
                                   bool detailed = true) const;

private:
  /// Found by a (view, code) pair, so counting a request copies no string.
  struct ByRouteAndCode {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return std::pair<std::string_view, unsigned>(a.first, a.second) < std::pair<std::string_view, unsigned>(b.first, b.second);
    }
  };
  std::map<std::pair<std::string, unsigned>, std::uint64_t, ByRouteAndCode> requests_;
  std::array<std::uint64_t, 4> refused_{}; ///< by refused_codes
  Histogram<request_buckets.size()> request_duration_{request_buckets};
  Histogram<upstream_buckets.size()> upstream_duration_{upstream_buckets};
  std::size_t connections_ = 0;
  std::map<std::string, std::uint64_t, std::less<>> jwks_;
};

} // namespace cltoken

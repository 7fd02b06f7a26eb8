#pragma once
// Prometheus text exposition (format 0.0.4) of the daemon's counters. Request counters and
// the latency histogram live here; everything per credential is read from a StatusView
// at scrape time, so there is one source of truth.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "core/documents.hpp"

namespace cltoken {

class Metrics {
public:
  /// Upper bounds of the request duration histogram, in seconds.
  static constexpr std::array<double, 12> buckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                  0.01,   0.025,   0.05,   0.1,   1.0,    10.0};

  void observe_request(const std::string& route, unsigned code, double seconds);
  void set_connections(std::size_t n) { connections_ = n; }

  /// The whole exposition. `budget_remaining`: upstream requests left in the window.
  [[nodiscard]] std::string render(const StatusView& status, SteadyTime now, unsigned budget_remaining) const;

private:
  std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_;
  std::array<std::uint64_t, buckets.size()> bucket_counts_{};
  std::uint64_t duration_count_ = 0;
  double duration_sum_ = 0;
  std::size_t connections_ = 0;
};

} // namespace cltoken

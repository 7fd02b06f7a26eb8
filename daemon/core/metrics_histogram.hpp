#pragma once
// A Prometheus histogram with fixed upper bounds: cumulative bucket counts, a sum and a
// count, rendered as the three families the text format 0.0.4 asks for.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cltoken {

template <std::size_t N>
class Histogram {
public:
  /// `bounds`: the finite upper bounds ("le"), ascending; +Inf is implicit.
  explicit constexpr Histogram(const std::array<double, N>& bounds) : bounds_(bounds) {}

  void observe(double value) {
    ++count_;
    sum_ += value;
    for (std::size_t i = 0; i < N; ++i)
      if (value <= bounds_[i]) ++counts_[i];
  }

  [[nodiscard]] std::uint64_t count() const { return count_; }
  [[nodiscard]] double sum() const { return sum_; }
  [[nodiscard]] const std::array<double, N>& bounds() const { return bounds_; }
  /// Observations <= bounds()[i] (cumulative, as exposed).
  [[nodiscard]] std::uint64_t at_most(std::size_t i) const { return counts_[i]; }

private:
  std::array<double, N> bounds_;
  std::array<std::uint64_t, N> counts_{};
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

} // namespace cltoken

#pragma once
// A clock the test moves by hand: time passes only when the test says so.
#include "core/clock.hpp"

namespace cltoken::test {

class FakeClock final : public Clock {
public:
  [[nodiscard]] SteadyTime now() const override { return steady_; }
  [[nodiscard]] WallTime wall_now() const override { return wall_; }
  void advance(SteadyClock::duration d) {
    steady_ += d;
    wall_ += std::chrono::duration_cast<WallTime::duration>(d);
  }

private:
  SteadyTime steady_ = SteadyTime{} + std::chrono::hours(1000);
  WallTime wall_ = WallTime{} + std::chrono::seconds(1795000000); // 2026-11-18
};

} // namespace cltoken::test

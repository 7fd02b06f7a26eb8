#pragma once
// Randomness for jitter and backoff, injectable so tests can pin it.
#include <random>

namespace cltoken {

class Random {
public:
  virtual ~Random() = default;
  /// Uniform in [0, 1].
  virtual double uniform() = 0;
  /// Uniform in [-1, 1].
  double symmetric() { return uniform() * 2.0 - 1.0; }
};

class SystemRandom final : public Random {
public:
  SystemRandom() : engine_(std::random_device{}()) {}
  double uniform() override { return std::uniform_real_distribution<double>(0.0, 1.0)(engine_); }

private:
  std::mt19937_64 engine_;
};

} // namespace cltoken

#include "core/clock.hpp"

namespace cltoken {

SteadyTime SystemClock::now() const { return SteadyClock::now(); }
WallTime SystemClock::wall_now() const { return std::chrono::system_clock::now(); }

} // namespace cltoken

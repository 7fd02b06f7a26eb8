#include "async/spawn.hpp"

#include <spdlog/spdlog.h>

namespace cltoken {

void LogFailure::operator()(std::exception_ptr p) const {
  if (!p) return;
  try {
    std::rethrow_exception(p);
  } catch (const std::exception& e) {
    spdlog::error("{} failed unexpectedly: {}{}{}", what, e.what(), then.empty() ? "" : "; ", then);
  } catch (...) {
    spdlog::error("{} failed unexpectedly{}{}", what, then.empty() ? "" : "; ", then);
  }
}

void Rethrow::operator()(std::exception_ptr p) const {
  if (!p) return;
  try {
    std::rethrow_exception(p);
  } catch (const std::exception& e) {
    spdlog::critical("{} stopped: {}", what, e.what());
    throw;
  }
}

} // namespace cltoken

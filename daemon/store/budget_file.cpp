#include "store/budget_file.hpp"

#include <spdlog/spdlog.h>

#include "core/budget_record.hpp"
#include "store/atomic_file.hpp"

namespace cltoken {

namespace {
/// A 429 pause is never longer than this after a restart, whatever the record says (the
/// longest the daemon pauses by itself is backoff_max, five minutes by default).
constexpr Millis max_restored_pause{15 * 60 * 1000};
} // namespace

BudgetFile::~BudgetFile() { budget_.window().on_change(nullptr); }

void BudgetFile::start(const std::string& path, Millis in_flight_allowance) {
  path_ = path;
  if (path_.empty()) {
    spdlog::info("upstream.budget_path is not set: a restart starts with the whole upstream budget");
    return;
  }
  try {
    if (auto text = read_whole_file(path_, 8 * 1024 * 1024)) {
      auto parsed = parse_budget_record(*text);
      if (!parsed.record) {
        spdlog::warn("upstream budget record {} not used: {}; starting with the whole budget", path_, parsed.error);
      } else {
        const unsigned taken =
            budget_.window().restore(*parsed.record, clock_.now(), clock_.wall_now(), in_flight_allowance, max_restored_pause);
        auto pause = budget_.paused_until(clock_.now());
        spdlog::info(
            "upstream budget: {} request(s) of the last minute taken back from {}{}", taken, path_,
            pause ? fmt::format(", a 429 pause for another {} s", std::chrono::ceil<Seconds>(*pause - clock_.now()).count())
                  : std::string());
      }
    }
  } catch (const std::exception& e) {
    spdlog::warn("upstream budget record not read: {}; starting with the whole budget", e.what());
  }
  budget_.window().on_change([this] { write(); });
  write();
}

void BudgetFile::set_path(const std::string& path) {
  if (path == path_) return;
  const bool was_off = path_.empty();
  path_ = path;
  if (was_off && !path_.empty()) budget_.window().on_change([this] { write(); });
  if (!path_.empty()) write();
}

void BudgetFile::write() {
  if (path_.empty()) return;
  try {
    replace_file_atomically(path_, render_budget_record(budget_.window().record(clock_.now(), clock_.wall_now())), false);
    if (failing_) spdlog::info("upstream budget record {} written again", path_);
    failing_ = false;
  } catch (const std::exception& e) {
    if (!failing_) spdlog::warn("upstream budget record not written: {}; a restart now would forget it", e.what());
    failing_ = true;
  }
}

} // namespace cltoken

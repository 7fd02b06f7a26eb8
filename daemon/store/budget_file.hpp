#pragma once
// The upstream budget's record kept in upstream.budget_path (core/budget_record.hpp): read
// once at start, so that a restarted daemon spends only what its previous life left of
// the window, and rewritten on every change of the budget (a request sent or answered, a
// 429 pause). A few small writes a minute, without fsync: the record must outlive the
// process, and a power cut outlasts the 60 s window anyway.
#include <string>

#include "core/clock.hpp"
#include "core/upstream_budget.hpp"

namespace cltoken {

class BudgetFile {
public:
  /// `budget` and `clock` must outlive this object.
  BudgetFile(UpstreamBudget& budget, const Clock& clock) : budget_(budget), clock_(clock) {}
  ~BudgetFile();
  BudgetFile(const BudgetFile&) = delete;
  BudgetFile& operator=(const BudgetFile&) = delete;

  /// Takes back what `path` holds (nothing when it is missing; an unreadable or foreign
  /// file is logged and ignored), then keeps it up to date. `in_flight_allowance`: how long
  /// a request found in flight may have held on (the upstream request deadline). "": off.
  void start(const std::string& path, Millis in_flight_allowance);
  /// A reload: a new path is written from now on (the old file is left alone).
  void set_path(const std::string& path);

private:
  void write();

  UpstreamBudget& budget_;
  const Clock& clock_;
  std::string path_;
  bool failing_ = false; ///< a write failed: said once until one succeeds
};

} // namespace cltoken

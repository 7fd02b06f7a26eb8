#include "core/request_slots.hpp"

namespace cltoken {

RequestSlots::Slot::~Slot() {
  if (state_) --*count_; // else moved from
}

std::optional<RequestSlots::Slot> RequestSlots::acquire(uid_t uid) {
  std::size_t& count = state_->in_progress[uid];
  if (state_->limit != 0 && count >= state_->limit) return std::nullopt;
  ++count;
  return Slot(state_, count);
}

std::size_t RequestSlots::in_progress(uid_t uid) const {
  auto it = state_->in_progress.find(uid);
  return it == state_->in_progress.end() ? 0 : it->second;
}

} // namespace cltoken

#include "core/request_slots.hpp"

namespace cltoken {

RequestSlots::Slot::~Slot() {
  if (!state_) return; // moved from
  auto it = state_->in_progress.find(uid_);
  if (it != state_->in_progress.end() && --it->second == 0) state_->in_progress.erase(it);
}

std::optional<RequestSlots::Slot> RequestSlots::acquire(uid_t uid) {
  if (state_->limit != 0 && in_progress(uid) >= state_->limit) return std::nullopt;
  ++state_->in_progress[uid];
  return Slot(state_, uid);
}

std::size_t RequestSlots::in_progress(uid_t uid) const {
  auto it = state_->in_progress.find(uid);
  return it == state_->in_progress.end() ? 0 : it->second;
}

} // namespace cltoken

#pragma once
// The per-peer cap on requests in progress ([server] max_requests_per_peer): one local
// user cannot hold every connection slot and waiter of the daemon with slow or parked
// requests while other users wait. Counted per uid, because a uid is what the kernel
// vouches for; a process can open as many connections as it likes.
#include <sys/types.h>

#include <cstddef>
#include <map>
#include <memory>
#include <optional>

namespace cltoken {

class RequestSlots {
  struct State {
    std::size_t limit = 0;
    /// One entry per uid that ever held a slot, kept at 0 (a few dozen bytes per local
    /// user, and uids are the kernel's to give): a request then allocates nothing.
    std::map<uid_t, std::size_t> in_progress;
  };

public:
  /// A held slot; released when destroyed (also when a connection's coroutine frame is
  /// destroyed at shutdown, after the RequestSlots itself may be gone).
  class Slot {
  public:
    Slot(std::shared_ptr<State> state, std::size_t& count) : state_(std::move(state)), count_(&count) {}
    Slot(Slot&& other) noexcept : state_(std::move(other.state_)), count_(other.count_) {}
    Slot& operator=(Slot&&) = delete;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();

  private:
    std::shared_ptr<State> state_; ///< keeps the count alive
    std::size_t* count_;           ///< its uid's count: map nodes never move
  };

  /// `limit` 0 means no per-peer cap.
  explicit RequestSlots(std::size_t limit = 0) { state_->limit = limit; }

  /// A slot for one request of `uid`, or nullopt when it already has `limit` in progress.
  [[nodiscard]] std::optional<Slot> acquire(uid_t uid);

  /// A new limit (config reload); requests already in progress keep their slots.
  void set_limit(std::size_t limit) { state_->limit = limit; }
  [[nodiscard]] std::size_t limit() const { return state_->limit; }
  [[nodiscard]] std::size_t in_progress(uid_t uid) const;

private:
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

} // namespace cltoken

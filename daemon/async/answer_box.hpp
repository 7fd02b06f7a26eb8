#pragma once
// Clients parked until a sans-I/O core answers them: the core names each waiting client by
// a number and later emits its answer as an action; the driver delivers it here, and the
// waiting coroutine wakes. The timer never fires by itself (the core answers every waiter
// by its deadline): cancelling it is how the answer is handed over.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "async/clock_timer.hpp"
#include "async/spawn.hpp"

namespace cltoken {

template <class Answer>
class AnswerBox {
public:
  /// Waits for the answer to `id`. `then` runs once the client is registered: it performs
  /// the core's actions, which may answer it at once.
  boost::asio::awaitable<Answer> wait(boost::asio::any_io_executor executor, std::uint64_t id, std::function<void()> then) {
    Slot slot{std::nullopt, ClockTimer(executor, SteadyTime::max())};
    const Registered registered(slots_, id, slot);
    then();
    while (!slot.answer) co_await slot.timer.async_wait(use_tuple);
    co_return std::move(*slot.answer);
  }
  /// Hands `answer` to the client waiting for `id`, if it still waits.
  void deliver(std::uint64_t id, Answer answer) {
    if (auto it = slots_.find(id); it != slots_.end()) {
      it->second->answer = std::move(answer);
      it->second->timer.cancel();
    }
  }
  [[nodiscard]] std::size_t waiting() const { return slots_.size(); }

private:
  struct Slot {
    std::optional<Answer> answer;
    ClockTimer timer;
  };
  /// Unregisters the slot however the wait ends (answered, or its coroutine destroyed).
  struct Registered {
    Registered(std::map<std::uint64_t, Slot*>& slots, std::uint64_t id, Slot& slot) : slots_(slots), id_(id) {
      slots_.emplace(id, &slot);
    }
    ~Registered() { slots_.erase(id_); }
    Registered(const Registered&) = delete;
    Registered& operator=(const Registered&) = delete;
    std::map<std::uint64_t, Slot*>& slots_;
    std::uint64_t id_;
  };
  std::map<std::uint64_t, Slot*> slots_;
};

} // namespace cltoken

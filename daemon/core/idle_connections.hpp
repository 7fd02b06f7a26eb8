#pragma once
// Keep-alive connections waiting for their next request, and which of them have waited
// longer than server.idle_timeout_ms. One timer in the listener closes them all, instead
// of one armed timer per connection: an idle connection then holds no timer operation,
// only its entry here (1,000 idle connections: docs/performance.md). Pure logic on an
// injected time; closing is the caller's function.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "core/clock.hpp"

namespace cltoken {

class IdleConnections {
public:
  using Id = std::uint64_t;
  using Close = std::function<void()>;

  /// A connection starts waiting at `since`. `first`: it has not sent a request yet, so a
  /// stop leaves it be (its client just connected and its request may be on the way), but
  /// the idle timeout still applies to it. Returns the id to remove() it by.
  Id add(SteadyTime since, bool first, Close close);
  /// It stopped waiting (a request arrived, or it closed). Unknown ids are ignored.
  void remove(Id id);

  /// Takes out every connection idle since `now - timeout` or longer, for the caller to close.
  std::vector<Close> take_expired(SteadyTime now, Millis timeout);
  /// Takes out every connection that has served a request (a stop closes those at once).
  std::vector<Close> take_served();
  /// When the oldest waiting connection times out; nullopt when none waits.
  [[nodiscard]] std::optional<SteadyTime> next_expiry(Millis timeout) const;

  [[nodiscard]] std::size_t size() const { return waiting_.size(); }
  [[nodiscard]] bool empty() const { return waiting_.empty(); }

private:
  struct Entry {
    SteadyTime since;
    bool first;
    Close close;
  };
  // Ids grow with time and time never goes back, so the map's order is the order of
  // `since`: the oldest entry is the first, whatever idle_timeout a reload sets.
  std::map<Id, Entry> waiting_;
  Id next_ = 0;
};

} // namespace cltoken

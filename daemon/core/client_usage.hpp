#pragma once
// Who used which credential lately, for GET /v1/clients: one row per (principal,
// credential), where the principal is the peer's systemd unit when it is known, else its
// uid. Bounded whatever the peers do: at most `capacity` rows (each row's strings are
// bounded too: a credential name at most 64 bytes, a unit name 255), rows unused for
// `window` are dropped, and when the table is full the least recently used row makes room
// (counted in evicted()). Pure logic on an injected time.
#include <sys/types.h>

#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/clock.hpp"
#include "core/principal.hpp"

namespace cltoken {

class ClientUsage {
public:
  static constexpr std::size_t default_capacity = 4096;

  explicit ClientUsage(std::size_t capacity = default_capacity, SteadyClock::duration window = std::chrono::hours(1));
  ClientUsage(const ClientUsage&) = delete;
  ClientUsage& operator=(const ClientUsage&) = delete;

  struct Row {
    std::string credential;
    std::optional<std::string> unit; ///< the principal when set
    uid_t uid = 0;                   ///< the principal without a unit; else the last uid seen (DynamicUser= changes it)
    std::uint64_t requests = 0;      ///< since first_seen
    std::uint64_t refused = 0;       ///< of which 403
    SteadyTime first_seen{};
    SteadyTime last_seen{};
  };

  /// One request of `peer` naming the configured credential `credential`.
  void record(const PeerIdentity& peer, std::string_view credential, bool refused, SteadyTime now);

  /// The rows used within the window, most recently used first.
  [[nodiscard]] std::vector<Row> rows(SteadyTime now) const;

  [[nodiscard]] std::size_t size() const { return lru_.size(); }
  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  [[nodiscard]] SteadyClock::duration window() const { return window_; }
  /// Rows dropped to make room while still inside the window.
  [[nodiscard]] std::uint64_t evicted() const { return evicted_; }

private:
  /// (credential, unit or "", uid when there is no unit)
  using Key = std::tuple<std::string, std::string, uid_t>;
  void expire(SteadyTime now);

  std::size_t capacity_;
  SteadyClock::duration window_;
  std::list<Row> lru_; ///< most recently used first
  /// Found by a tuple of views, so a request copies no string to look itself up.
  struct ByViews {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return views(a) < views(b);
    }
    template <typename T>
    static std::tuple<std::string_view, std::string_view, uid_t> views(const T& k) {
      return {std::get<0>(k), std::get<1>(k), std::get<2>(k)};
    }
  };
  std::map<Key, std::list<Row>::iterator, ByViews> index_;
  std::uint64_t evicted_ = 0;
};

} // namespace cltoken

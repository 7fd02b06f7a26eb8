#pragma once
// What the auth server can honour of the [refresh] settings: Commerce Layer answers with the
// token it already issued until that token has refresh.reissue_window_s left, so a refresh
// planned earlier, or a min_ttl longer than the window, cannot get a newer token. Plain
// text for --check and the start-up log; no I/O.
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"

namespace cltoken {

struct RefreshAdviceInput {
  double at = 0.75;
  double jitter = 0.05;
  Seconds min_ttl{0};
  Seconds reissue_window{0};
  std::optional<unsigned> at_line;      ///< where refresh.at is set, if it is
  std::optional<unsigned> min_ttl_line; ///< where refresh.min_ttl is set, if it is
  Seconds shortest_lifetime{7200};      ///< of the configured credentials' default lifetimes
};

/// One "LINE: text" pair per setting the upstream cannot honour. The default `at` is not
/// reported: it only says "as early as the upstream allows".
struct RefreshAdvice {
  unsigned line = 0;
  std::string text;
};
[[nodiscard]] std::vector<RefreshAdvice> refresh_advice(const RefreshAdviceInput& in);

} // namespace cltoken

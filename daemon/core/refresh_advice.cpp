#include "core/refresh_advice.hpp"

#include <fmt/format.h>

namespace cltoken {

std::vector<RefreshAdvice> refresh_advice(const RefreshAdviceInput& in) {
  std::vector<RefreshAdvice> out;
  const long window = in.reissue_window.count();
  const long lifetime = in.shortest_lifetime.count();
  if (window <= 0 || window >= lifetime) return out;
  // The default `at` set explicitly (as the example config does) asks for nothing special.
  if (in.at_line && in.at != RefreshAdviceInput{}.at) {
    // The latest refresh the jitter allows still comes before the window opens.
    const double latest = (in.at + in.jitter) * static_cast<double>(lifetime);
    if (latest < static_cast<double>(lifetime - window))
      out.push_back(
          {*in.at_line,
           fmt::format("refresh.at = {} asks for a refresh {} s before a {} s token expires, but the auth server "
                       "issues a new token only in its last {} s (refresh.reissue_window_s): refreshes happen "
                       "when that window opens, so a refresh has at most {} s to ride out an outage",
                       in.at, static_cast<long>(static_cast<double>(lifetime) * (1.0 - in.at)), lifetime, window, window)});
  }
  if (in.min_ttl_line && in.min_ttl.count() > window)
    out.push_back(
        {*in.min_ttl_line, fmt::format("refresh.min_ttl = {} s is longer than the reissue window ({} s): the auth server cannot "
                                       "give a token with that much left; clients asking for it get the current one",
                                       in.min_ttl.count(), window)});
  return out;
}

} // namespace cltoken

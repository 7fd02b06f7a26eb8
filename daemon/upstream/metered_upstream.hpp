#pragma once
// An Upstream that times every token request into Metrics (the upstream latency
// histogram of /metrics) and forwards everything to the Upstream it wraps. A decorator, so
// neither the broker nor the HTTPS client needs to know that anyone measures them.
#include <boost/asio/awaitable.hpp>

#include "core/clock.hpp"
#include "core/metrics.hpp"
#include "upstream/forwarding_upstream.hpp"

namespace cltoken {

class MeteredUpstream final : public ForwardingUpstream {
public:
  MeteredUpstream(Upstream& inner, Metrics& metrics, const Clock& clock)
      : ForwardingUpstream(inner), metrics_(metrics), clock_(clock) {}

  boost::asio::awaitable<UpstreamResult> request_token(const TokenRequest& request) override {
    const SteadyTime sent = clock_.now();
    UpstreamResult result = co_await inner_.request_token(request);
    metrics_.observe_upstream(std::chrono::duration<double>(clock_.now() - sent).count());
    co_return result;
  }

private:
  Metrics& metrics_;
  const Clock& clock_;
};

} // namespace cltoken

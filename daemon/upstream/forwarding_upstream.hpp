#pragma once
// The base of an Upstream decorator: forwards revoke to the Upstream it wraps, leaving
// request_token, where decorators do their work, to the derived class.
#include "upstream/upstream.hpp"

namespace cltoken {

class ForwardingUpstream : public Upstream {
public:
  explicit ForwardingUpstream(Upstream& inner) : inner_(inner) {}
  ForwardingUpstream(const ForwardingUpstream&) = delete;
  ForwardingUpstream& operator=(const ForwardingUpstream&) = delete;

  boost::asio::awaitable<std::optional<UpstreamFailure>>
  revoke(const std::string& client_id, const std::optional<Secret>& client_secret, const Secret& token) override {
    co_return co_await inner_.revoke(client_id, client_secret, token);
  }

protected:
  Upstream& inner_;
};

} // namespace cltoken

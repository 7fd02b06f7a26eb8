#pragma once
// An Upstream that verifies every token the auth server answers before anyone sees it
// (upstream/token_verifier.hpp): a token that fails becomes an UpstreamFailure of kind
// invalid_token whose message names the failed check, so the broker and the customer
// sessions count it, back off and report it like any failed fetch, and never serve or
// store it. A decorator, like MeteredUpstream: neither caller knows verification exists.
#include "upstream/token_verifier.hpp"
#include "upstream/forwarding_upstream.hpp"

namespace cltoken {

class VerifyingUpstream final : public ForwardingUpstream {
public:
  VerifyingUpstream(Upstream& inner, TokenVerifier& verifier, const Clock& clock, Millis key_timeout)
      : ForwardingUpstream(inner), verifier_(verifier), clock_(clock), key_timeout_(key_timeout) {}

  void set_key_timeout(Millis t) { key_timeout_ = t; }

  boost::asio::awaitable<UpstreamResult> request_token(const TokenRequest& request) override;

private:
  TokenVerifier& verifier_;
  const Clock& clock_;
  Millis key_timeout_; ///< the longest a token waits for the key set (upstream.request_timeout_ms)
};

} // namespace cltoken

#include "upstream/verifying_upstream.hpp"

#include <spdlog/spdlog.h>

namespace cltoken {

boost::asio::awaitable<UpstreamResult> VerifyingUpstream::request_token(const TokenRequest& request) {
  UpstreamResult result = co_await inner_.request_token(request);
  auto* grant = std::get_if<TokenGrant>(&result);
  if (grant == nullptr || verifier_.settings().mode == VerifyMode::off) co_return result;
  TokenExpectations expect;
  expect.client_id = request.client_id;
  expect.kind = request.application_kind;
  expect.scope = request.scope;
  // A customer grant names its owner in the answer; a refresh must keep the session's.
  expect.owner_id = !request.expected_owner_id.empty() ? request.expected_owner_id : grant->owner_id;
  expect.expires_in = grant->expires_in;
  auto verified = co_await verifier_.check_issued(grant->access_token.reveal(), std::move(expect), clock_.now() + key_timeout_);
  if (auto* f = std::get_if<VerifyFailure>(&verified)) {
    UpstreamFailure failure;
    failure.kind = FailureKind::invalid_token;
    failure.message = "token refused (" + std::string(to_string(f->reason)) + "): " + f->message;
    // An unknown kid (or a key set that could not be had) cannot be looked up again before
    // the key-set interval ends: a retry sooner would spend a token request on the same refusal.
    if (f->reason == VerifyReason::unknown_kid || f->reason == VerifyReason::keys_unavailable)
      if (const auto wait = std::chrono::ceil<Seconds>(verifier_.next_key_fetch() - clock_.now()); wait > Seconds(0))
        failure.retry_after = wait;
    co_return failure; // the grant, secrets included, is wiped as `result` goes
  }
  co_return result;
}

} // namespace cltoken

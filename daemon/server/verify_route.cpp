#include "server/verify_route.hpp"

#include "core/verify_answer.hpp"

namespace cltoken {

namespace {

boost::asio::awaitable<Response> verify_later(TokenVerifier& verifier, Secret token, SteadyTime deadline) {
  auto result = co_await verifier.check_presented(token.reveal(), deadline);
  co_return json_response(verify_answer(result));
}

} // namespace

std::variant<Response, boost::asio::awaitable<Response>> verify_token(TokenVerifier& verifier, std::string& body,
                                                                      SteadyTime deadline) {
  auto token = read_verify_request(body);
  if (!token) return error_response(400, "bad_request", "body must be {\"access_token\":\"...\"}");
  if (auto result = verifier.check_presented_now(token->reveal())) return json_response(verify_answer(*result));
  return verify_later(verifier, std::move(*token), deadline);
}

} // namespace cltoken

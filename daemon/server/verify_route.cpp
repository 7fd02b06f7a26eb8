#include "server/verify_route.hpp"

#include "core/verify_answer.hpp"

namespace cltoken {

boost::asio::awaitable<Response> verify_token(TokenVerifier& verifier, std::string body, SteadyTime deadline) {
  auto token = read_verify_request(body);
  if (!token) co_return error_response(400, "bad_request", "body must be {\"access_token\":\"...\"}");
  auto result = co_await verifier.check_presented(token->reveal(), deadline);
  co_return json_response(verify_answer(result));
}

} // namespace cltoken

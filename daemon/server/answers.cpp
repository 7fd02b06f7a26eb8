#include "server/answers.hpp"

namespace cltoken {

Response token_response(TokenAnswer answer) {
  switch (answer.kind) {
  case TokenAnswer::Kind::served: return json_response(std::move(answer.document));
  case TokenAnswer::Kind::unknown: return error_response(404, "unknown_credential", unknown_credential_message);
  case TokenAnswer::Kind::unavailable: break;
  }
  Response r = error_response(503, answer.why == Unavailable::rejected ? "upstream_rejected" : "upstream_unavailable",
                              answer.message);
  r.retry_after = std::max<long>(1, answer.retry_after.count());
  return r;
}

Response revoke_response(RevokeAnswer answer) {
  switch (answer.kind) {
  case RevokeAnswer::Kind::revoked: return json_response(R"({"revoked":true})");
  case RevokeAnswer::Kind::unknown: return error_response(404, "unknown_credential", unknown_credential_message);
  case RevokeAnswer::Kind::unavailable: break;
  }
  return token_response(std::move(answer.refused));
}

} // namespace cltoken

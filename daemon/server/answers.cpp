#include "server/answers.hpp"

#include <nlohmann/json.hpp>

namespace cltoken {

Response token_response(TokenAnswer answer) {
  switch (answer.kind) {
  case TokenAnswer::Kind::served: return json_response(std::move(answer.document));
  case TokenAnswer::Kind::unknown: return error_response(404, "unknown_credential", unknown_credential_message);
  case TokenAnswer::Kind::refreshed:
  case TokenAnswer::Kind::kept: return refresh_response(std::move(answer));
  case TokenAnswer::Kind::unavailable: break;
  }
  Response r =
      error_response(503, answer.why == Unavailable::rejected ? "upstream_rejected" : "upstream_unavailable", answer.message);
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

Response refresh_response(TokenAnswer answer) {
  nlohmann::json doc;
  switch (answer.kind) {
  case TokenAnswer::Kind::refreshed:
    doc = {{"refreshed", true}, {"expires_in", answer.expires_in.count()}};
    return json_response(doc.dump());
  case TokenAnswer::Kind::kept:
    doc = {{"refreshed", false}, {"expires_in", answer.expires_in.count()}, {"message", answer.message}};
    return json_response(doc.dump());
  default: return token_response(std::move(answer));
  }
}

Response session_response(SessionAnswer answer) {
  using Kind = SessionAnswer::Kind;
  const long retry = std::max<long>(1, answer.retry_after.count());
  switch (answer.kind) {
  case Kind::served: return json_response(std::move(answer.document));
  case Kind::created: return json_response(std::move(answer.document), 201);
  case Kind::ended: return json_response(R"({"ended":true})");
  case Kind::unknown: return error_response(404, "not_found", "no such session");
  case Kind::expired: return error_response(410, "session_expired", "the customer session has expired; create a new one");
  case Kind::bad_request: return error_response(400, "bad_request", answer.message);
  case Kind::invalid_credentials: return error_response(401, "invalid_credentials", answer.message);
  case Kind::rate_limited: {
    Response r = error_response(429, "rate_limited", answer.message);
    r.retry_after = retry;
    return r;
  }
  case Kind::unavailable: break;
  }
  Response r = error_response(503, answer.rejected ? "upstream_rejected" : "upstream_unavailable", answer.message);
  r.retry_after = retry;
  return r;
}

} // namespace cltoken

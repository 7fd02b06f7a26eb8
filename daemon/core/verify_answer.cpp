#include "core/verify_answer.hpp"

#include <nlohmann/json.hpp>

namespace cltoken {

std::optional<Secret> read_verify_request(std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  wipe(body);
  std::optional<Secret> out;
  if (!j.is_discarded() && j.is_object() && j.size() == 1 && j.contains("access_token") && j["access_token"].is_string()) {
    auto& token = j["access_token"].get_ref<std::string&>();
    out = Secret(token);
    wipe(token);
  }
  return out;
}

std::string verify_answer(const std::variant<DecodedJwt, VerifyFailure>& result) {
  nlohmann::json j;
  if (const auto* jwt = std::get_if<DecodedJwt>(&result)) {
    j = {{"valid", true}, {"claims", public_claims(jwt->claims)}};
  } else {
    const auto& f = std::get<VerifyFailure>(result);
    j = {{"valid", false}, {"reason", to_string(f.reason)}, {"message", f.message}};
  }
  // Claims are the auth server's bytes: invalid UTF-8 there must not cost the answer.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace cltoken

#include "core/verify_answer.hpp"

#include <nlohmann/json.hpp>

#include "core/json_text.hpp"

namespace cltoken {

namespace {

/// The token of a body in the usual shape, {"access_token":"…"} (JSON whitespace allowed
/// between the parts) with a token JSON carries verbatim, read without the JSON lexer;
/// nullopt for any other body, which the parser then decides on. Accepts nothing the
/// parser would refuse and reads the same token it would.
std::optional<std::string_view> plain_token(std::string_view body) {
  auto skip_space = [&body] {
    while (!body.empty() && (body[0] == ' ' || body[0] == '\t' || body[0] == '\n' || body[0] == '\r')) body.remove_prefix(1);
  };
  auto take = [&](std::string_view part) {
    skip_space();
    if (!body.starts_with(part)) return false;
    body.remove_prefix(part.size());
    return true;
  };
  if (!take("{") || !take(R"("access_token")") || !take(":") || !take("\"")) return std::nullopt;
  const auto end = body.find('"');
  if (end == std::string_view::npos) return std::nullopt;
  const std::string_view token = body.substr(0, end);
  if (!json_verbatim(token)) return std::nullopt; // escapes, control or non-ASCII bytes: the parser's call
  body.remove_prefix(end + 1);
  if (!take("}")) return std::nullopt;
  skip_space();
  if (!body.empty()) return std::nullopt;
  return token;
}

} // namespace

std::optional<Secret> read_verify_request(std::string& body) {
  if (auto token = plain_token(body)) {
    Secret out{std::string(*token)};
    wipe(body);
    return out;
  }
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
  if (const auto* jwt = std::get_if<DecodedJwt>(&result)) {
    // The bytes json::dump writes for {"valid":true,"claims":public_claims(...)}, without
    // building that document (members by name: "claims" before "valid").
    std::string out;
    out.reserve(1024);
    out += R"({"claims":)";
    append_public_claims(out, jwt->claims);
    out += R"(,"valid":true})";
    return out;
  }
  const auto& f = std::get<VerifyFailure>(result);
  const nlohmann::json j = {{"valid", false}, {"reason", to_string(f.reason)}, {"message", f.message}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace cltoken

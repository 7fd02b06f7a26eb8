#include "core/session_request.hpp"

#include <set>
#include <string>

#include "core/client_json.hpp"

#include "core/wipe_json.hpp"

namespace cltoken {

namespace {

constexpr const char* forms =
    "body must be one of {\"username\",\"password\"}, {\"refresh_token\"}, {\"access_token\",\"refresh_token\"?} "
    "or {\"assertion\"}, each a non-empty string";

} // namespace

std::variant<SessionRequest, std::string> parse_session_request(std::string& body) {
  auto j = parse_client_json(body);
  wipe(body);
  std::variant<SessionRequest, std::string> out = std::string(forms);
  if (!j.is_discarded() && j.is_object()) {
    std::set<std::string> keys;
    bool strings = true;
    for (auto it = j.begin(); it != j.end(); ++it) {
      keys.insert(it.key());
      if (!it.value().is_string() || it.value().get_ref<const std::string&>().empty()) strings = false;
    }
    auto take = [&](const char* k) { return Secret(j[k].get<std::string>()); };
    SessionRequest r;
    bool ok = strings;
    if (!strings) {
      // a non-string value: nothing to take out
    } else if (keys == std::set<std::string>{"username", "password"}) {
      r.grant = SessionRequest::Grant::password;
      r.username = j["username"].get<std::string>();
      r.password = take("password");
    } else if (keys == std::set<std::string>{"refresh_token"}) {
      r.grant = SessionRequest::Grant::refresh_token;
      r.refresh_token = take("refresh_token");
    } else if (keys == std::set<std::string>{"access_token"} || keys == std::set<std::string>{"access_token", "refresh_token"}) {
      r.grant = SessionRequest::Grant::adopt;
      r.access_token = take("access_token");
      if (keys.contains("refresh_token")) r.refresh_token = take("refresh_token");
    } else if (keys == std::set<std::string>{"assertion"}) {
      r.grant = SessionRequest::Grant::assertion;
      r.assertion = take("assertion");
    } else {
      ok = false;
    }
    const auto too_long = [](const std::optional<Secret>& t) { return t && t->reveal().size() > max_customer_token_bytes; };
    if (ok && (too_long(r.access_token) || too_long(r.refresh_token))) {
      out = "access_token and refresh_token may be at most " + std::to_string(max_customer_token_bytes) + " bytes";
      ok = false;
    }
    if (ok) out = std::move(r);
  }
  if (!j.is_discarded()) wipe_json(j);
  return out;
}

} // namespace cltoken

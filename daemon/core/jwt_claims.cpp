#include "core/jwt_claims.hpp"

#include "core/base64url.hpp"

#include <openssl/evp.h>
#include <nlohmann/json.hpp>

#include "core/client_json.hpp"

namespace cltoken {

std::optional<JwtClaims> read_jwt_claims(std::string_view token) {
  const auto a = token.find('.');
  if (a == std::string_view::npos) return std::nullopt;
  const auto b = token.find('.', a + 1);
  if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos) return std::nullopt;
  auto payload = base64url_decode(token.substr(a + 1, b - a - 1));
  if (!payload) return std::nullopt;
  auto j = parse_client_json(*payload); // an adopted token comes from a socket peer
  if (j.is_discarded() || !j.is_object() || !j.contains("exp") || !j["exp"].is_number()) return std::nullopt;
  JwtClaims c;
  c.exp = j["exp"].get<std::int64_t>();
  if (auto o = j.find("owner"); o != j.end() && o->is_object()) {
    if (auto id = o->find("id"); id != o->end() && id->is_string()) c.owner_id = id->get<std::string>();
    if (auto t = o->find("type"); t != o->end() && t->is_string()) c.owner_type = t->get<std::string>();
  }
  if (auto app = j.find("application"); app != j.end() && app->is_object())
    if (auto id = app->find("client_id"); id != app->end() && id->is_string()) c.client_id = id->get<std::string>();
  if (auto s = j.find("scope"); s != j.end() && s->is_string()) c.scope = s->get<std::string>();
  return c;
}

} // namespace cltoken

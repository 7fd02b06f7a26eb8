#include "core/jwt_claims.hpp"

#include <vector>

#include <openssl/evp.h>

#include "core/client_json.hpp"

namespace cltoken {

namespace {

std::optional<std::string> base64url_decode(std::string_view in) {
  std::string b64;
  b64.reserve(in.size() + 3);
  for (char c : in) {
    if (c == '-') b64 += '+';
    else if (c == '_') b64 += '/';
    else if (c == '+' || c == '/' || c == '=') return std::nullopt; // not base64url
    else b64 += c;
  }
  if (b64.size() % 4 == 1) return std::nullopt;
  while (b64.size() % 4 != 0) b64 += '=';
  std::vector<unsigned char> out(b64.size() / 4 * 3 + 1);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (n < 0) return std::nullopt;
  std::size_t len = static_cast<std::size_t>(n);
  // EVP_DecodeBlock counts the padding as zero bytes: take them off again.
  for (std::size_t i = b64.size(); i > 0 && b64[i - 1] == '=' && len > 0; --i) --len;
  return std::string(reinterpret_cast<const char*>(out.data()), len);
}

} // namespace

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

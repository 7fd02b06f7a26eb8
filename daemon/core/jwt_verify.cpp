#include "core/jwt_verify.hpp"

#include <openssl/evp.h>

#include <charconv>
#include <set>
#include <span>

#include <fmt/format.h>

#include "core/base64url.hpp"
#include "core/documents.hpp"
#include "core/json_text.hpp"

namespace cltoken {

namespace {

using json = nlohmann::json;

VerifyFailure fail(VerifyReason r, std::string message) { return VerifyFailure{r, std::move(message)}; }

std::optional<json> decode_object(std::string_view part) {
  auto bytes = base64url_decode(part);
  if (!bytes) return std::nullopt;
  auto j = json::parse(*bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

const json* member(const json& j, const char* name) {
  auto it = j.find(name);
  return it == j.end() ? nullptr : &*it;
}

std::string string_at(const json& j, const char* object, const char* name) {
  const json* o = member(j, object);
  if (o == nullptr || !o->is_object()) return {};
  const json* v = member(*o, name);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

std::set<std::string, std::less<>> scope_entries(std::string_view s) {
  std::set<std::string, std::less<>> out;
  while (!s.empty()) {
    const auto sp = s.find(' ');
    if (sp != 0) out.emplace(s.substr(0, sp));
    if (sp == std::string_view::npos) break;
    s.remove_prefix(sp + 1);
  }
  return out;
}

/// Entries that restrict what a token reaches: a token carrying one that was not asked
/// for reaches another market, store or stock location than the credential's.
bool restricting(std::string_view entry) {
  return entry.starts_with("market:") || entry.starts_with("store:") || entry.starts_with("stock_location:");
}

} // namespace

const char* to_string(VerifyReason r) {
  switch (r) {
  case VerifyReason::malformed: return "malformed";
  case VerifyReason::unsupported_alg: return "unsupported_alg";
  case VerifyReason::unknown_kid: return "unknown_kid";
  case VerifyReason::bad_signature: return "bad_signature";
  case VerifyReason::expired: return "expired";
  case VerifyReason::wrong_issuer: return "wrong_issuer";
  case VerifyReason::wrong_application: return "wrong_application";
  case VerifyReason::wrong_kind: return "wrong_kind";
  case VerifyReason::wrong_scope: return "wrong_scope";
  case VerifyReason::wrong_owner: return "wrong_owner";
  case VerifyReason::wrong_expiry: return "wrong_expiry";
  case VerifyReason::keys_unavailable: return "keys_unavailable";
  }
  return "malformed";
}

std::variant<DecodedJwt, VerifyFailure> decode_jwt(std::string_view token) {
  if (token.empty()) return fail(VerifyReason::malformed, "empty token");
  if (token.size() > max_jwt_bytes)
    return fail(VerifyReason::malformed, fmt::format("token longer than {} bytes", max_jwt_bytes));
  const auto a = token.find('.');
  const auto b = a == std::string_view::npos ? a : token.find('.', a + 1);
  if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos)
    return fail(VerifyReason::malformed, "not a JWT (header.payload.signature)");
  auto header = decode_object(token.substr(0, a));
  if (!header) return fail(VerifyReason::malformed, "JWT header is not base64url JSON");
  const json* alg = member(*header, "alg");
  // Only RS512: "none" and the HMAC algorithms would let anyone holding the public key
  // sign (the classic algorithm confusion); the algorithm is fixed here, not taken from
  // the token.
  if (alg == nullptr || !alg->is_string() || alg->get<std::string>() != "RS512")
    return fail(VerifyReason::unsupported_alg, "JWT algorithm is not RS512");
  const json* kid = member(*header, "kid");
  if (kid == nullptr || !kid->is_string() || !valid_kid(kid->get<std::string>()))
    return fail(VerifyReason::malformed, "JWT header has no usable kid");
  auto claims = decode_object(token.substr(a + 1, b - a - 1));
  if (!claims) return fail(VerifyReason::malformed, "JWT payload is not base64url JSON");
  auto signature = base64url_decode(token.substr(b + 1));
  if (!signature || signature->empty()) return fail(VerifyReason::malformed, "JWT signature is not base64url");
  DecodedJwt out;
  out.kid = kid->get<std::string>();
  out.signing_input = std::string(token.substr(0, b));
  out.signature = std::move(*signature);
  out.claims = std::move(*claims);
  return out;
}

std::optional<VerifyFailure> check_signature(const DecodedJwt& jwt, const KeySet& keys) {
  auto it = keys.find(jwt.kid);
  if (it == keys.end())
    return fail(VerifyReason::unknown_kid, "signed with a key the auth server does not publish (unknown kid)");
  const auto* sig = reinterpret_cast<const unsigned char*>(jwt.signature.data());
  const auto* input = reinterpret_cast<const unsigned char*>(jwt.signing_input.data());
  // RS512 = RSASSA-PKCS1-v1_5 with SHA-512 (RFC 7518 section 3.3).
  int ok = 0;
  if (EVP_PKEY_CTX* verifier = it->second.verifier.get()) {
    // SHA-512 fetched from the provider once: EVP_sha512() is looked up again at each use.
    static EVP_MD* const sha512 = EVP_MD_fetch(nullptr, "SHA512", nullptr);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    ok = EVP_Digest(input, jwt.signing_input.size(), digest, &digest_len, sha512 != nullptr ? sha512 : EVP_sha512(), nullptr);
    if (ok == 1) ok = EVP_PKEY_verify(verifier, sig, jwt.signature.size(), digest, digest_len);
  } else {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (ctx == nullptr) return fail(VerifyReason::bad_signature, "signature check could not run (out of memory)");
    ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha512(), nullptr, it->second.pkey.get());
    if (ok == 1) ok = EVP_DigestVerify(ctx, sig, jwt.signature.size(), input, jwt.signing_input.size());
    EVP_MD_CTX_free(ctx);
  }
  if (ok != 1) return fail(VerifyReason::bad_signature, "signature does not verify with the auth server's keys");
  return std::nullopt;
}

std::optional<VerifyFailure> check_claims(const json& claims, const TokenExpectations& expect, WallTime now) {
  const json* iss = member(claims, "iss");
  if (iss == nullptr || !iss->is_string() || iss->get<std::string>() != expect.issuer)
    return fail(VerifyReason::wrong_issuer, "token issued by another auth server than the configured one");
  const json* exp = member(claims, "exp");
  if (exp == nullptr || !exp->is_number_integer()) return fail(VerifyReason::malformed, "token has no numeric exp");
  const std::int64_t exp_s = exp->get<std::int64_t>();
  const std::int64_t now_s = std::chrono::duration_cast<Seconds>(now.time_since_epoch()).count();
  if (exp_s <= now_s) return fail(VerifyReason::expired, "token has expired");
  if (!expect.client_id.empty() && string_at(claims, "application", "client_id") != expect.client_id)
    return fail(VerifyReason::wrong_application, "token issued to another application");
  if (!expect.kind.empty() && string_at(claims, "application", "kind") != expect.kind)
    return fail(VerifyReason::wrong_kind, "token issued to another kind of application");
  if (!expect.scope.empty()) {
    const json* s = member(claims, "scope");
    const auto got = scope_entries(s != nullptr && s->is_string() ? s->get<std::string>() : std::string());
    const auto want = scope_entries(expect.scope);
    bool same = true;
    for (const auto& w : want) same = same && got.contains(w);
    for (const auto& g : got) same = same && (!restricting(g) || want.contains(g));
    if (!same) return fail(VerifyReason::wrong_scope, "token scope differs from the configured scope");
  }
  if (!expect.owner_id.empty() && string_at(claims, "owner", "id") != expect.owner_id)
    return fail(VerifyReason::wrong_owner, "token belongs to another customer");
  if (expect.expires_in) {
    // The daemon plans by expires_in; a token that dies earlier than that would be served
    // dead, one that lives much longer is not what the auth server said it sent.
    const std::int64_t said = now_s + expect.expires_in->count();
    if (exp_s < said - expect.skew.count() || exp_s > said + expect.skew.count())
      return fail(VerifyReason::wrong_expiry, "token exp contradicts the expires_in the auth server answered");
  }
  return std::nullopt;
}

std::variant<DecodedJwt, VerifyFailure> verify_jwt(std::string_view token, const KeySet& keys, const TokenExpectations& expect,
                                                   WallTime now) {
  auto decoded = decode_jwt(token);
  if (auto* f = std::get_if<VerifyFailure>(&decoded)) return std::move(*f);
  auto& jwt = std::get<DecodedJwt>(decoded);
  if (auto f = check_signature(jwt, keys)) return std::move(*f);
  if (auto f = check_claims(jwt.claims, expect, now)) return std::move(*f);
  return decoded;
}

namespace {

/// What POST /v1/verify shows of a token's claims, in the order nlohmann::json writes an
/// object's members (by name): an object's listed fields (primitives or arrays), or a
/// primitive member (no fields), and expires_at, derived from an integer exp.
constexpr const char* application_fields[] = {"client_id", "id", "kind", "public"};
constexpr const char* market_fields[] = {"allows_external_prices", "geocoder_id", "id", "price_list_id", "stock_location_ids"};
constexpr const char* organization_fields[] = {"enterprise", "id", "region", "slug"};
constexpr const char* owner_fields[] = {"id", "type"};
struct Shown {
  const char* name;
  std::span<const char* const> fields;
};
constexpr Shown shown_claims[] = {
    {"application", application_fields},
    {"exp", {}},
    {"expires_at", {}},
    {"iat", {}},
    {"iss", {}},
    {"market", market_fields},
    {"organization", organization_fields},
    {"owner", owner_fields},
    {"scope", {}},
    {"test", {}},
};

bool is_object_entry(const Shown& s) { return !s.fields.empty(); }

std::optional<std::string> expires_at(const json& claims) {
  const json* exp = member(claims, "exp");
  if (exp == nullptr || !exp->is_number_integer()) return std::nullopt;
  return rfc3339(WallTime(Seconds(exp->get<std::int64_t>())));
}

/// A value as json::dump writes it, invalid UTF-8 replaced (the claims are the auth
/// server's bytes). The usual values, strings JSON carries verbatim and integers, are
/// written here; dump() would build a serializer and a string for each.
void append_value(std::string& out, const json& v) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (json_verbatim(s)) {
      out += '"';
      out += s;
      out += '"';
      return;
    }
  } else if (v.is_number_integer()) {
    char digits[24];
    const auto end = v.is_number_unsigned() ? std::to_chars(digits, digits + sizeof digits, v.get<std::uint64_t>()).ptr
                                            : std::to_chars(digits, digits + sizeof digits, v.get<std::int64_t>()).ptr;
    out.append(digits, end);
    return;
  } else if (v.is_boolean()) {
    out += v.get<bool>() ? "true" : "false";
    return;
  }
  out += v.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace

json public_claims(const json& claims) {
  json out = json::object();
  for (const Shown& s : shown_claims) {
    if (std::string_view(s.name) == "expires_at") {
      if (auto at = expires_at(claims)) out[s.name] = std::move(*at);
      continue;
    }
    const json* v = member(claims, s.name);
    if (v == nullptr) continue;
    if (!is_object_entry(s)) {
      if (v->is_primitive()) out[s.name] = *v;
      continue;
    }
    if (!v->is_object()) continue;
    json part = json::object();
    for (const char* f : s.fields)
      if (const json* fv = member(*v, f); fv != nullptr && (fv->is_primitive() || fv->is_array())) part[f] = *fv;
    out[s.name] = std::move(part);
  }
  return out;
}

void append_public_claims(std::string& out, const json& claims) {
  // Written member by member from the token's own document: building public_claims()
  // and dumping it allocated a node, a key and a copy per member on every verification.
  char sep = '{';
  auto key = [&](const char* name) {
    out += sep;
    sep = ',';
    out += '"';
    out += name;
    out += "\":";
  };
  for (const Shown& s : shown_claims) {
    if (std::string_view(s.name) == "expires_at") {
      if (auto at = expires_at(claims)) {
        key(s.name);
        out += '"';
        out += *at;
        out += '"';
      }
      continue;
    }
    const json* v = member(claims, s.name);
    if (v == nullptr) continue;
    if (!is_object_entry(s)) {
      if (v->is_primitive()) {
        key(s.name);
        append_value(out, *v);
      }
      continue;
    }
    if (!v->is_object()) continue;
    key(s.name);
    char inner = '{';
    for (const char* f : s.fields) {
      const json* fv = member(*v, f);
      if (fv == nullptr || !(fv->is_primitive() || fv->is_array())) continue;
      out += inner;
      inner = ',';
      out += '"';
      out += f;
      out += "\":";
      append_value(out, *fv);
    }
    if (inner == '{') out += '{';
    out += '}';
  }
  if (sep == '{') out += '{';
  out += '}';
}

} // namespace cltoken

#include "core/jwks.hpp"

#include <cctype>
#include <variant>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/base64url.hpp"

namespace cltoken {

namespace {

using json = nlohmann::json;

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;

Bn bignum(const std::string& bytes) {
  return Bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()), nullptr));
}

std::shared_ptr<EVP_PKEY> rsa_public_key(const BIGNUM* n, const BIGNUM* e) {
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (bld == nullptr) return nullptr;
  OSSL_PARAM* params = nullptr;
  if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1)
    params = OSSL_PARAM_BLD_to_param(bld);
  OSSL_PARAM_BLD_free(bld);
  if (params == nullptr) return nullptr;
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  if (ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1) (void)EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return std::shared_ptr<EVP_PKEY>(pkey, EVP_PKEY_free);
}

std::shared_ptr<EVP_PKEY_CTX> rs512_verifier(EVP_PKEY* pkey) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
  if (ctx == nullptr) return nullptr;
  if (EVP_PKEY_verify_init(ctx) != 1 || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
      EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha512()) != 1) {
    EVP_PKEY_CTX_free(ctx);
    return nullptr;
  }
  return std::shared_ptr<EVP_PKEY_CTX>(ctx, EVP_PKEY_CTX_free);
}

std::string string_member(const json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string encode(const BIGNUM* b) {
  std::string raw(static_cast<std::size_t>(BN_num_bytes(b)), '\0');
  BN_bn2bin(b, reinterpret_cast<unsigned char*>(raw.data()));
  return base64url_encode(raw);
}

/// One key, or why it is refused.
std::variant<std::pair<std::string, SigningKey>, std::string> read_key(const json& k) {
  if (!k.is_object()) return std::string("not an object");
  const std::string kid = string_member(k, "kid");
  if (!valid_kid(kid)) return std::string("no usable kid (1 to 128 characters of A-Z a-z 0-9 . _ -)");
  const std::string kty = string_member(k, "kty");
  if (kty != "RSA") return fmt::format("key type is not RSA");
  if (k.contains("alg") && string_member(k, "alg") != "RS512") return std::string("alg is not RS512");
  if (k.contains("use") && string_member(k, "use") != "sig") return std::string("use is not sig");
  auto n = base64url_decode(string_member(k, "n"));
  auto e = base64url_decode(string_member(k, "e"));
  if (!n || !e || n->empty() || e->empty()) return std::string("n or e is missing or not base64url");
  if (n->size() > static_cast<std::size_t>(max_rsa_bits / 8) + 1 || e->size() > 8)
    return std::string("modulus or exponent too large");
  Bn bn_n = bignum(*n), bn_e = bignum(*e);
  if (!bn_n || !bn_e) return std::string("n or e unreadable");
  const int bits = BN_num_bits(bn_n.get());
  if (bits < min_rsa_bits) return fmt::format("RSA key of {} bits (at least {} needed)", bits, min_rsa_bits);
  if (bits > max_rsa_bits) return fmt::format("RSA key of {} bits (at most {} accepted)", bits, max_rsa_bits);
  // An even exponent or 1 is no RSA public key: refused rather than left to fail later.
  if (!BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get())) return std::string("unusable RSA exponent");
  auto pkey = rsa_public_key(bn_n.get(), bn_e.get());
  if (!pkey) return std::string("OpenSSL refused the key");
  auto verifier = rs512_verifier(pkey.get());
  return std::pair{kid, SigningKey{std::move(pkey), bits, std::move(verifier)}};
}

} // namespace

bool valid_kid(std::string_view kid) {
  if (kid.empty() || kid.size() > 128) return false;
  for (char c : kid)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return kid != "." && kid != "..";
}

JwksParse parse_jwks(std::string_view document) {
  JwksParse out;
  if (document.size() > max_jwks_bytes) {
    out.error = fmt::format("key set larger than {} bytes", max_jwks_bytes);
    return out;
  }
  auto j = json::parse(document, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("keys") || !j["keys"].is_array()) {
    out.error = "not a JSON Web Key Set ({\"keys\":[...]})";
    return out;
  }
  const auto& keys = j["keys"];
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i >= max_jwks_keys) {
      out.refused.push_back(fmt::format("keys after the first {} were not read", max_jwks_keys));
      break;
    }
    auto read = read_key(keys[i]);
    if (auto* why = std::get_if<std::string>(&read)) {
      // The kid is quoted only when it is a sane one: it comes from the network.
      const std::string kid = keys[i].is_object() ? string_member(keys[i], "kid") : std::string();
      out.refused.push_back(fmt::format("key {}{}: {}", i, valid_kid(kid) ? " (kid " + kid + ")" : "", *why));
      continue;
    }
    auto& [kid, key] = std::get<0>(read);
    if (!out.keys.emplace(kid, std::move(key)).second)
      out.refused.push_back(fmt::format("key {} (kid {}): kid already used", i, kid));
  }
  if (out.keys.empty() && out.error.empty()) out.error = "no usable key in the set";
  return out;
}

std::string jwks_document(const KeySet& keys) {
  json arr = json::array();
  for (const auto& [kid, key] : keys) {
    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    if (EVP_PKEY_get_bn_param(key.pkey.get(), OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
        EVP_PKEY_get_bn_param(key.pkey.get(), OSSL_PKEY_PARAM_RSA_E, &e) == 1)
      arr.push_back({{"kty", "RSA"}, {"kid", kid}, {"alg", "RS512"}, {"use", "sig"}, {"n", encode(n)}, {"e", encode(e)}});
    BN_free(n);
    BN_free(e);
  }
  return json{{"keys", arr}}.dump();
}

} // namespace cltoken

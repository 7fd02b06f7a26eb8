#pragma once
// Test keys and tokens: RSA keys made with OpenSSL, their JWKs, and compact JWS
// signed with them, so the verifier is tested against real signatures.
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "core/base64url.hpp"

namespace cltoken::testing {

using Pkey = std::shared_ptr<EVP_PKEY>;

inline Pkey make_rsa(unsigned bits) {
  EVP_PKEY* k = EVP_RSA_gen(bits);
  if (k == nullptr) throw std::runtime_error("RSA key generation failed");
  return Pkey(k, EVP_PKEY_free);
}

inline std::string bn_param(EVP_PKEY* k, const char* name) {
  BIGNUM* b = nullptr;
  if (EVP_PKEY_get_bn_param(k, name, &b) != 1) throw std::runtime_error("no such key parameter");
  std::string raw(static_cast<std::size_t>(BN_num_bytes(b)), '\0');
  BN_bn2bin(b, reinterpret_cast<unsigned char*>(raw.data()));
  BN_free(b);
  return raw;
}

/// The JWK of an RSA public key.
inline nlohmann::json rsa_jwk(const Pkey& k, const std::string& kid) {
  return {{"kty", "RSA"},
          {"kid", kid},
          {"use", "sig"},
          {"alg", "RS512"},
          {"n", base64url_encode(bn_param(k.get(), OSSL_PKEY_PARAM_RSA_N))},
          {"e", base64url_encode(bn_param(k.get(), OSSL_PKEY_PARAM_RSA_E))}};
}

inline std::string jwks_of(std::initializer_list<nlohmann::json> keys) { return nlohmann::json{{"keys", keys}}.dump(); }

/// header.payload signed with RS512 (PKCS#1 v1.5, SHA-512).
inline std::string sign_rs512(const Pkey& k, const nlohmann::json& header, const nlohmann::json& claims) {
  const std::string input = base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t len = 0;
  std::string sig;
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha512(), nullptr, k.get()) == 1 &&
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1) {
    sig.resize(len);
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  return input + "." + base64url_encode(sig);
}

/// header.payload with an HMAC-SHA512 signature keyed by `secret`.
inline std::string sign_hs512(const std::string& secret, const nlohmann::json& header, const nlohmann::json& claims) {
  const std::string input = base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t len = sizeof mac;
  EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA512", nullptr, secret.data(), secret.size(),
            reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, sizeof mac, &len);
  return input + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), len));
}

} // namespace cltoken::testing

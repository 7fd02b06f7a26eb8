// Fuzzes the token verifier's two parsers: a JWKS (what the auth server's key endpoint
// answers) and a JWT (what any local service hands to POST /v1/verify). Either must come
// out as keys or a refusal, never a crash, an exception, an accepted forgery, or a
// message that is not one bounded line.
//
// Input: the first byte chooses the parser (even: JWT, odd: JWKS); the rest is the
// document. JWTs are checked against a key made at start, which no input can have signed.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "core/jwks.hpp"
#include "core/jwt_verify.hpp"

using namespace cltoken;

namespace {
[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "FINDING: %s\n", what);
  std::abort();
}

void check_line(const std::string& message) {
  if (message.empty()) finding("a refusal without a message");
  if (message.size() > 512) finding("a message that is not bounded");
  for (char c : message)
    if (static_cast<unsigned char>(c) < 0x20) finding("a control character in a message (log injection)");
}

const KeySet& fixed_keys() {
  // Keys under the kids a fuzzer finds first ("k", "a", "0"): signatures are then really
  // checked, not stopped at unknown_kid.
  static const KeySet keys = [] {
    KeySet k;
    EVP_PKEY* p = EVP_RSA_gen(2048);
    if (p == nullptr) finding("no test key");
    std::shared_ptr<EVP_PKEY> shared(p, EVP_PKEY_free);
    for (const char* kid : {"k", "a", "0", "k1"}) k.emplace(kid, SigningKey{shared, 2048, nullptr}); // each check sets up its own
    return k;
  }();
  return keys;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view doc(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    JwksParse parsed = parse_jwks(doc);
    if (parsed.keys.empty() == parsed.error.empty()) finding("a JWKS with neither keys nor an error, or both");
    if (parsed.keys.size() > max_jwks_keys) finding("more keys than the cap");
    for (const auto& [kid, key] : parsed.keys) {
      if (!valid_kid(kid)) finding("a key kept under an insane kid");
      if (key.bits < min_rsa_bits || key.bits > max_rsa_bits || !key.pkey) finding("a key outside the accepted sizes");
    }
    for (const auto& r : parsed.refused) check_line(r);
    if (!parsed.error.empty()) check_line(parsed.error);
    return 0;
  }
  TokenExpectations expect;
  expect.issuer = "https://auth.example.test";
  const WallTime now = WallTime(std::chrono::seconds(1764000000)); // a fixed "now": reproducible
  auto r = verify_jwt(doc, fixed_keys(), expect, now);
  if (!std::holds_alternative<VerifyFailure>(r)) finding("a token accepted without a signature by the key");
  check_line(std::get<VerifyFailure>(r).message);
  (void)public_claims(nlohmann::json::object());
  return 0;
}

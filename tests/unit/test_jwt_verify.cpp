#include <catch2/catch.hpp>

#include "core/base64url.hpp"
#include "core/jwks.hpp"
#include "core/jwt_verify.hpp"
#include "jwt_keys.hpp"

using namespace cltoken;
using namespace cltoken::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const WallTime now = WallTime{} + 1732560000s;
const std::int64_t now_s = 1732560000;
const std::string issuer = "https://auth.example.test";

// One 2048-bit key for the whole file: generating them is the slow part.
const Pkey& key() {
  static Pkey k = make_rsa(2048);
  return k;
}
const Pkey& other_key() {
  static Pkey k = make_rsa(2048);
  return k;
}
KeySet keys() {
  static KeySet set = parse_jwks(jwks_of({rsa_jwk(key(), "k1")})).keys;
  return set;
}

json claims() {
  return {{"organization", {{"id", "org1"}, {"slug", "acme"}, {"enterprise", false}, {"region", "eu-west-1"}}},
          {"application", {{"id", "app1"}, {"client_id", "cid-eu"}, {"kind", "sales_channel"}, {"public", true}}},
          {"market", {{"id", {"m1"}}}},
          {"scope", "market:code:europe"},
          {"exp", now_s + 7200},
          {"iat", now_s},
          {"test", true},
          {"iss", issuer}};
}
const json header = {{"alg", "RS512"}, {"typ", "JWT"}, {"kid", "k1"}};

TokenExpectations expected() {
  TokenExpectations e;
  e.issuer = issuer;
  e.client_id = "cid-eu";
  e.kind = "sales_channel";
  e.scope = "market:code:europe";
  e.expires_in = 7200s;
  return e;
}

std::optional<VerifyReason> reason(const std::string& token, const TokenExpectations& e = expected(), const KeySet& k = keys()) {
  auto r = verify_jwt(token, k, e, now);
  if (auto* f = std::get_if<VerifyFailure>(&r)) return f->reason;
  return std::nullopt;
}

} // namespace

TEST_CASE("base64url round-trips every length and refuses padding and the other alphabet", "[jwt]") {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\xff\xfe\x00\x01"}) CHECK(base64url_decode(base64url_encode(s)) == s);
  CHECK(base64url_encode("\xfb\xff") == "-_8");
  CHECK_FALSE(base64url_decode("ab=="));
  CHECK_FALSE(base64url_decode("a+b/"));
  CHECK_FALSE(base64url_decode("abcde"));
}

TEST_CASE("a token signed by the auth server's key with the expected claims verifies", "[jwt]") {
  const std::string token = sign_rs512(key(), header, claims());
  auto r = verify_jwt(token, keys(), expected(), now);
  REQUIRE(std::holds_alternative<DecodedJwt>(r));
  const json shown = public_claims(std::get<DecodedJwt>(r).claims);
  CHECK(shown["application"]["client_id"] == "cid-eu");
  CHECK(shown["organization"]["slug"] == "acme");
  CHECK(shown["market"]["id"] == json::array({"m1"}));
  CHECK(shown["expires_at"] == "2024-11-25T20:40:00Z");
  CHECK_FALSE(shown.dump().find(token.substr(token.rfind('.') + 1)) != std::string::npos);
}

TEST_CASE("a signature by another key, or a changed payload, is bad_signature", "[jwt]") {
  CHECK(reason(sign_rs512(other_key(), header, claims())) == VerifyReason::bad_signature);
  std::string token = sign_rs512(key(), header, claims());
  json forged = claims();
  forged["scope"] = "market:all";
  const auto a = token.find('.'), b = token.rfind('.');
  std::string tampered = token.substr(0, a + 1) + base64url_encode(forged.dump()) + token.substr(b);
  CHECK(reason(tampered) == VerifyReason::bad_signature);
}

TEST_CASE("the key set up once for verification and a key set up per check agree", "[jwt]") {
  KeySet fresh = keys();
  REQUIRE(fresh.at("k1").verifier); // what parse_jwks gives: the prepared path
  KeySet plain = fresh;
  plain.at("k1").verifier.reset(); // a key without one: set up per check
  const std::string good = sign_rs512(key(), header, claims());
  const std::string foreign = sign_rs512(other_key(), header, claims());
  std::string cut = good;
  cut.resize(cut.size() - 4); // a signature shorter than the modulus
  for (const KeySet* k : {&fresh, &plain}) {
    CHECK_FALSE(reason(good, expected(), *k));
    CHECK(reason(foreign, expected(), *k) == VerifyReason::bad_signature);
    CHECK(reason(cut, expected(), *k) == VerifyReason::bad_signature);
  }
  // The prepared context is reused: a refusal does not spoil the next verification.
  CHECK_FALSE(reason(good, expected(), fresh));
}

namespace {

/// header.payload signed by `k` with another padding or digest than RS512's.
std::string sign_with(const Pkey& k, const EVP_MD* md, int padding) {
  const std::string input = base64url_encode(header.dump()) + "." + base64url_encode(claims().dump());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  std::size_t len = 0;
  std::string sig;
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  if (EVP_DigestSignInit(ctx, &pctx, md, nullptr, k.get()) == 1 && EVP_PKEY_CTX_set_rsa_padding(pctx, padding) == 1 &&
      EVP_DigestSign(ctx, nullptr, &len, in, input.size()) == 1) {
    sig.resize(len);
    if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, in, input.size()) != 1) sig.clear();
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  REQUIRE_FALSE(sig.empty());
  return input + "." + base64url_encode(sig);
}

} // namespace

TEST_CASE("the prepared key refuses what RS512 is not: PSS padding, another digest, a signature of another length", "[jwt]") {
  KeySet fresh = keys();
  REQUIRE(fresh.at("k1").verifier);
  KeySet plain = fresh;
  plain.at("k1").verifier.reset();
  // Signed by the right key, so only padding and digest can make them fail.
  const std::string pss = sign_with(key(), EVP_sha512(), RSA_PKCS1_PSS_PADDING);
  const std::string sha256 = sign_with(key(), EVP_sha256(), RSA_PKCS1_PADDING);
  const std::string good = sign_with(key(), EVP_sha512(), RSA_PKCS1_PADDING);
  const auto dot = good.rfind('.');
  const std::string longer = good.substr(0, dot + 1) + base64url_encode(*base64url_decode(good.substr(dot + 1)) + '\0');
  for (const KeySet* k : {&fresh, &plain}) {
    CHECK_FALSE(reason(good, expected(), *k));
    CHECK(reason(pss, expected(), *k) == VerifyReason::bad_signature);
    CHECK(reason(sha256, expected(), *k) == VerifyReason::bad_signature);
    CHECK(reason(longer, expected(), *k) == VerifyReason::bad_signature);
  }
  CHECK_FALSE(reason(good, expected(), fresh)); // still usable after the refusals
}

TEST_CASE("a kid the key set does not hold is unknown_kid; a kid with path characters is malformed", "[jwt]") {
  json h = header;
  h["kid"] = "k2";
  CHECK(reason(sign_rs512(key(), h, claims())) == VerifyReason::unknown_kid);
  h["kid"] = "../../etc/passwd";
  CHECK(reason(sign_rs512(key(), h, claims())) == VerifyReason::malformed);
  h["kid"] = "https://evil.example/jwks.json";
  CHECK(reason(sign_rs512(key(), h, claims())) == VerifyReason::malformed);
}

TEST_CASE("alg none and HS512 keyed with the public key are refused whatever they carry", "[jwt]") {
  json h = header;
  h["alg"] = "none";
  const std::string unsigned_token = base64url_encode(h.dump()) + "." + base64url_encode(claims().dump()) + ".";
  CHECK(reason(unsigned_token) == VerifyReason::unsupported_alg);
  h["alg"] = "HS512";
  const std::string public_jwk = rsa_jwk(key(), "k1").dump();
  CHECK(reason(sign_hs512(public_jwk, h, claims())) == VerifyReason::unsupported_alg);
  h.erase("alg");
  CHECK(reason(sign_rs512(key(), h, claims())) == VerifyReason::unsupported_alg);
}

TEST_CASE("what is not a JWT is malformed, never a crash", "[jwt]") {
  CHECK(reason("") == VerifyReason::malformed);
  CHECK(reason("abc") == VerifyReason::malformed);
  CHECK(reason("a.b") == VerifyReason::malformed);
  CHECK(reason("a.b.c.d") == VerifyReason::malformed);
  CHECK(reason("!!!.???.###") == VerifyReason::malformed);
  CHECK(reason(base64url_encode("[1]") + "." + base64url_encode("{}") + ".c2ln") == VerifyReason::malformed);
  CHECK(reason(std::string(1024 * 1024, 'a')) == VerifyReason::malformed);
  const std::string token = sign_rs512(key(), header, claims());
  CHECK(reason(token.substr(0, token.rfind('.') + 1)) == VerifyReason::malformed); // no signature
}

TEST_CASE("each claim that differs from the credential's is named", "[jwt]") {
  auto with = [](const char* path, json value) {
    json c = claims();
    c[json::json_pointer(path)] = std::move(value);
    return sign_rs512(key(), header, c);
  };
  CHECK(reason(with("/iss", "https://evil.example")) == VerifyReason::wrong_issuer);
  CHECK(reason(with("/iss", issuer + "/")) == VerifyReason::wrong_issuer);
  CHECK(reason(with("/application/client_id", "cid-us")) == VerifyReason::wrong_application);
  CHECK(reason(with("/application/kind", "integration")) == VerifyReason::wrong_kind);
  CHECK(reason(with("/scope", "market:code:usa")) == VerifyReason::wrong_scope);
  CHECK(reason(with("/scope", "market:code:europe market:code:usa")) == VerifyReason::wrong_scope);
  CHECK(reason(with("/scope", "")) == VerifyReason::wrong_scope);
  CHECK(reason(with("/exp", now_s)) == VerifyReason::expired);
  CHECK(reason(with("/exp", "soon")) == VerifyReason::malformed);
  CHECK(reason(with("/exp", now_s + 7200 - 61)) == VerifyReason::wrong_expiry);
  CHECK(reason(with("/exp", now_s + 7200 + 61)) == VerifyReason::wrong_expiry);
  CHECK_FALSE(reason(with("/exp", now_s + 7200 - 60)));
  CHECK_FALSE(reason(with("/exp", now_s + 7200 + 60)));
}

TEST_CASE("a customer token must belong to the session's customer", "[jwt]") {
  json c = claims();
  c["owner"] = {{"id", "cust-ada"}, {"type", "Customer"}};
  const std::string token = sign_rs512(key(), header, c);
  TokenExpectations e = expected();
  e.owner_id = "cust-ada";
  CHECK_FALSE(reason(token, e));
  e.owner_id = "cust-bob";
  CHECK(reason(token, e) == VerifyReason::wrong_owner);
}

TEST_CASE("without credential expectations only signature, issuer and expiry are checked (the verify endpoint)", "[jwt]") {
  TokenExpectations e;
  e.issuer = issuer;
  json c = claims();
  c["scope"] = "market:code:usa";
  c["application"]["client_id"] = "anyone";
  c["exp"] = now_s + 5;
  CHECK_FALSE(reason(sign_rs512(key(), header, c), e));
}

TEST_CASE("a JWKS keeps its RSA keys of 2048 bits or more and refuses the rest key by key", "[jwt]") {
  static Pkey small = make_rsa(512);
  json ec_jwk = {{"kty", "EC"}, {"kid", "ec1"}, {"crv", "P-256"}, {"x", "AA"}, {"y", "AA"}};
  auto parsed = parse_jwks(jwks_of(
      {rsa_jwk(key(), "good"), rsa_jwk(small, "small"), ec_jwk, rsa_jwk(other_key(), "bad/kid"), rsa_jwk(other_key(), "good")}));
  CHECK(parsed.error.empty());
  REQUIRE(parsed.keys.size() == 1);
  CHECK(parsed.keys.contains("good"));
  CHECK(parsed.keys.at("good").bits == 2048);
  REQUIRE(parsed.refused.size() == 4);
  CHECK(parsed.refused[0].find("512 bits") != std::string::npos);
  CHECK(parsed.refused[1].find("not RSA") != std::string::npos);
  CHECK(parsed.refused[2].find("kid") != std::string::npos);
  CHECK(parsed.refused[2].find("bad/kid") == std::string::npos); // an insane kid is not quoted
  CHECK(parsed.refused[3].find("already used") != std::string::npos);

  json hs = rsa_jwk(key(), "hs");
  hs["alg"] = "HS512";
  CHECK(parse_jwks(jwks_of({hs})).keys.empty());
  CHECK_FALSE(parse_jwks(jwks_of({rsa_jwk(small, "only")})).error.empty());
  CHECK_FALSE(parse_jwks("not json").error.empty());
  CHECK_FALSE(parse_jwks(R"({"keys":{}})").error.empty());
  CHECK_FALSE(parse_jwks(std::string(max_jwks_bytes + 1, ' ')).error.empty());
}

TEST_CASE("a token signed by a key the JWKS refused does not verify", "[jwt]") {
  static Pkey small = make_rsa(512);
  json h = header;
  h["kid"] = "small";
  auto parsed = parse_jwks(jwks_of({rsa_jwk(small, "small"), rsa_jwk(key(), "k1")}));
  CHECK(reason(sign_rs512(small, h, claims()), expected(), parsed.keys) == VerifyReason::unknown_kid);
}

TEST_CASE("a key set written by jwks_document reads back to the same keys", "[jwt]") {
  const auto doc = jwks_document(keys());
  auto again = parse_jwks(doc);
  REQUIRE(again.keys.size() == 1);
  CHECK_FALSE(reason(sign_rs512(key(), header, claims()), expected(), again.keys));
}

TEST_CASE("base64url decoding refuses whitespace and padding anywhere, and reads every alphabet byte", "[jwt]") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  CHECK(base64url_decode(base64url_encode(all)) == all);
  CHECK(base64url_decode("-_-_") == std::string("\xfb\xff\xbf", 3));
  for (std::string bad : {"    abc", "ab c", "abc\n", "ab\x80", "a.bc"}) CHECK_FALSE(base64url_decode(bad));
}

// The key set as the token store keeps it: sealed under key material the store never
// holds, bound to its auth server and issuer, and refused when altered, foreign or stale.
#include <catch2/catch.hpp>

#include "core/sealed_key_set.hpp"
#include "core/sealed_token.hpp"
#include "core/store_identity.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

namespace {

Config config_with(std::optional<std::string> store_key, std::vector<std::pair<std::string, std::string>> secrets) {
  Config c;
  c.upstream.auth_url.text = "https://auth.example.test";
  c.upstream.issuer = c.upstream.auth_url.text;
  if (store_key) c.store.key = Secret(*store_key);
  for (auto& [name, secret] : secrets) {
    CredentialConfig cred;
    cred.name = name;
    cred.client_id = "id-" + name;
    if (!secret.empty()) cred.client_secret = Secret(secret);
    c.credentials.push_back(std::move(cred));
  }
  return c;
}

StoredKeySet sample(const KeySetKey& k) {
  return StoredKeySet{k.auth_url, k.issuer, WallTime(1795000000s), R"({"keys":[{"kty":"RSA","kid":"k1"}]})"};
}

UnsealError::Kind refusal(const std::variant<StoredKeySet, UnsealError>& r) {
  REQUIRE(std::holds_alternative<UnsealError>(r));
  return std::get<UnsealError>(r).kind;
}

} // namespace

TEST_CASE("the key set is sealed under the store key, else the first credential's secret by name") {
  auto with_store_key = key_set_key(config_with("store-key-0123456789abcdef0123456789", {{"b", "secret-b"}}));
  REQUIRE(with_store_key);
  CHECK(with_store_key->material.reveal() == "store-key-0123456789abcdef0123456789");
  CHECK(with_store_key->identity.size() == 64);

  // Order in the file does not matter; a credential without a secret is skipped.
  auto a = key_set_key(config_with(std::nullopt, {{"zeta", "secret-z"}, {"alpha", ""}, {"beta", "secret-b"}}));
  REQUIRE(a);
  CHECK(a->material.reveal() == "secret-b");
  auto b = key_set_key(config_with(std::nullopt, {{"beta", "secret-b"}, {"zeta", "secret-z"}}));
  REQUIRE(b);
  CHECK(a->identity == b->identity);

  CHECK_FALSE(key_set_key(config_with(std::nullopt, {{"sc", ""}})));
  CHECK_FALSE(key_set_key(config_with(std::nullopt, {})));

  // Another auth server or issuer: another identity, so its set is never looked at.
  Config other = config_with(std::nullopt, {{"beta", "secret-b"}});
  other.upstream.issuer = "https://issuer.example.test";
  CHECK(key_set_key(other)->identity != b->identity);
}

TEST_CASE("a sealed key set opens under its key and nothing else") {
  const auto key = *key_set_key(config_with(std::nullopt, {{"beta", "secret-b"}}));
  const std::string sealed = seal_key_set(sample(key), key);
  CHECK(sealed.substr(0, 4) == "CLKS");
  CHECK(sealed.find("kid") == std::string::npos); // the content is encrypted, not only signed

  auto opened = unseal_key_set(sealed, key);
  REQUIRE(std::holds_alternative<StoredKeySet>(opened));
  CHECK(std::get<StoredKeySet>(opened).jwks == sample(key).jwks);
  CHECK(std::get<StoredKeySet>(opened).fetched_at == WallTime(1795000000s));

  SECTION("one flipped bit anywhere") {
    for (std::size_t i = 5; i < sealed.size(); i += 7) {
      std::string bad = sealed;
      bad[i] = static_cast<char>(bad[i] ^ 0x01);
      CHECK(refusal(unseal_key_set(bad, key)) == UnsealError::Kind::authentication);
    }
  }
  SECTION("another key: what a writer of the store without the secret would produce") {
    auto other = *key_set_key(config_with(std::nullopt, {{"beta", "another-secret"}}));
    CHECK(refusal(unseal_key_set(seal_key_set(sample(other), other), key)) == UnsealError::Kind::authentication);
  }
  SECTION("sealed for another auth server under the same material") {
    KeySetKey lying = key;
    lying.auth_url = "https://evil.example.test";
    lying.issuer = lying.auth_url;
    CHECK(refusal(unseal_key_set(seal_key_set(sample(lying), lying), key)) == UnsealError::Kind::mismatch);
  }
  SECTION("a token record is not a key set, even under the same material") {
    StoredToken t;
    t.credential = "beta";
    t.identity = key.identity;
    t.access_token = Secret("eyJ.x.y");
    t.obtained_at = WallTime(1795000000s);
    t.expires_at = t.obtained_at + 1h;
    CHECK(refusal(unseal_key_set(seal_token(t, key.material), key)) == UnsealError::Kind::malformed);
  }
  SECTION("cut short, empty, another version") {
    CHECK(refusal(unseal_key_set(sealed.substr(0, 40), key)) == UnsealError::Kind::malformed);
    CHECK(refusal(unseal_key_set("", key)) == UnsealError::Kind::malformed);
    std::string v2 = sealed;
    v2[4] = 2;
    CHECK(refusal(unseal_key_set(v2, key)) == UnsealError::Kind::version);
  }
}

TEST_CASE("a stored key set older than jwks_max_age_s, or from the future, is stale") {
  StoredKeySet s{"https://a", "https://a", WallTime(1795000000s), "{}"};
  CHECK_FALSE(stale_key_set(s, s.fetched_at, 86400s));
  CHECK_FALSE(stale_key_set(s, s.fetched_at + 86400s, 86400s));
  auto old = stale_key_set(s, s.fetched_at + 86401s, 86400s);
  REQUIRE(old);
  CHECK_THAT(*old, Catch::Contains("86401 s ago"));
  CHECK_FALSE(stale_key_set(s, s.fetched_at - 30s, 86400s));
  CHECK(stale_key_set(s, s.fetched_at - 2min, 86400s));
}

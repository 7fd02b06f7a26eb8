// Sealed token records: the documented layout (docs/store.md) reproduced by an independent
// implementation, and every way a record can be wrong refused with a reason, never a crash.
#include <catch2/catch.hpp>

#include "core/sealed_token.hpp"
#include "core/store_crypto.hpp"
#include "core/store_identity.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

namespace {

CredentialConfig backoffice() {
  CredentialConfig c;
  c.name = "backoffice";
  c.kind = CredentialKind::integration;
  c.client_id = "it-backoffice";
  c.client_secret = Secret("s3cr3t-backoffice-value");
  c.scope = "market:all";
  return c;
}

constexpr std::string_view auth_url = "https://auth.example.test";

StoredToken sample(const std::string& identity) {
  StoredToken t;
  t.credential = "backoffice";
  t.identity = identity;
  t.access_token = Secret("eyJhbGciOiJSUzUxMiJ9.payload.signature");
  t.token_type = "bearer";
  t.scope = "market:all";
  t.obtained_at = WallTime(1795000000s);
  t.expires_at = t.obtained_at + 2h;
  return t;
}

std::string salt16() {
  std::string s;
  for (int i = 0; i < 16; ++i) s.push_back(static_cast<char>(i));
  return s;
}
std::string nonce12() {
  std::string s;
  for (int i = 100; i < 112; ++i) s.push_back(static_cast<char>(i));
  return s;
}

UnsealError::Kind refusal(const std::variant<StoredToken, UnsealError>& r) {
  REQUIRE(std::holds_alternative<UnsealError>(r));
  return std::get<UnsealError>(r).kind;
}

} // namespace

// Expected values computed with Python's `cryptography` from the layout in docs/store.md:
//   idkey = HKDF(SHA256, 32, salt=None, info=b"cl-tokend identity v1").derive(secret)
//   identity = HMAC(idkey, SHA256) over u32be-length-prefixed kind, client_id, scope, auth_url
//   header = b"CLTK\x01" + salt + nonce
//   key = HKDF(SHA256, 32, salt, info=b"cl-tokend token record v1").derive(secret)
//   blob = header + AESGCM(key).encrypt(nonce, compact JSON record, header + b"backoffice\0" + identity)
TEST_CASE("identity fingerprint and sealed record match an independent implementation") {
  const CredentialConfig c = backoffice();
  const std::string identity = identity_fingerprint(*c.client_secret, c, auth_url);
  CHECK(identity == "d9583dc5ab070a989157db9086b38c80adbf95a00cada37789c966484e1c6eb5");
  const std::string blob = seal_token(sample(identity), *c.client_secret, salt16(), nonce12());
  CHECK(store_crypto::to_hex(blob) ==
        "434c544b01000102030405060708090a0b0c0d0e0f6465666768696a6b6c6d6e6fc9e75a99bf7d26eb6ced1ba8c6c49bc83267b76754b2c78"
        "9a7ac0a6d79b7d413ebabe0a4b1bdc11c14b9a2fbf99aa206dbc5bf932be5718908d72204c4e62a9c1c541727866bdbfee98b64ac73d4284"
        "a9c67b9c5b645aad77195be93d9aa15c2270dccc30fa3c524366f4a01b921dacad7f81e7dad88530abda5ebe96f5b3853e0ef2547d3d1f926"
        "c3e74d0a3948efaedde3bf2124d44469096bfcab988400cd1436f88528f44d00cca8dac57f69802e836580bb5601f482c67b97ca5f2fe9556"
        "dbc50c26feacf456ce5c9339626948500fa1bdfa84ac864498f3960cc041f0a11e64b6d5cab458a36fa3fc70974f94b7c53643d5e093d3cc"
        "28f218a74fb9565468d2262a11e67e63e584f0b8a9b914f161e085b1e5d392dc3");
}

TEST_CASE("a sealed record opens to the same token, and never shows it in clear") {
  const CredentialConfig c = backoffice();
  const std::string identity = identity_fingerprint(*c.client_secret, c, auth_url);
  const StoredToken t = sample(identity);
  const std::string blob = seal_token(t, *c.client_secret);
  CHECK(blob.find("eyJhbGci") == std::string::npos);
  CHECK(blob.find("market:all") == std::string::npos);
  CHECK(seal_token(t, *c.client_secret) != blob); // fresh salt and nonce each time

  auto opened = unseal_token(blob, *c.client_secret, "backoffice", identity);
  REQUIRE(std::holds_alternative<StoredToken>(opened));
  const auto& back = std::get<StoredToken>(opened);
  CHECK(back.access_token.equals(t.access_token));
  CHECK(back.token_type == "bearer");
  CHECK(back.scope == "market:all");
  CHECK(back.obtained_at == t.obtained_at);
  CHECK(back.expires_at == t.expires_at);
  CHECK(back.credential == "backoffice");
  CHECK(back.identity == identity);
}

TEST_CASE("tampered, foreign and wrong-key records are refused with a reason") {
  const CredentialConfig c = backoffice();
  const Secret& key = *c.client_secret;
  const std::string identity = identity_fingerprint(key, c, auth_url);
  const std::string blob = seal_token(sample(identity), key);

  SECTION("every single-bit change anywhere") {
    for (std::size_t i = 0; i < blob.size(); ++i) {
      std::string bad = blob;
      bad[i] = static_cast<char>(bad[i] ^ 0x04);
      auto r = unseal_token(bad, key, "backoffice", identity);
      INFO("byte " << i);
      REQUIRE(std::holds_alternative<UnsealError>(r));
      const auto& e = std::get<UnsealError>(r);
      if (i < 4) CHECK(e.kind == UnsealError::Kind::malformed);
      else if (i == 4) CHECK(e.kind == UnsealError::Kind::version);
      else CHECK(e.kind == UnsealError::Kind::authentication);
      CHECK(e.message.find("eyJ") == std::string::npos);
    }
  }
  SECTION("every truncation") {
    for (std::size_t n = 0; n < blob.size(); ++n) {
      auto r = unseal_token(blob.substr(0, n), key, "backoffice", identity);
      INFO("length " << n);
      CHECK(std::holds_alternative<UnsealError>(r));
    }
    CHECK(refusal(unseal_token(blob.substr(0, 40), key, "backoffice", identity)) == UnsealError::Kind::malformed);
  }
  SECTION("a record of a newer format") {
    std::string future = blob;
    future[4] = 2;
    auto r = unseal_token(future, key, "backoffice", identity);
    CHECK(refusal(r) == UnsealError::Kind::version);
    CHECK_THAT(std::get<UnsealError>(r).message, Catch::Contains("version 2"));
  }
  SECTION("another key: a changed secret, or another daemon's store key") {
    CHECK(refusal(unseal_token(blob, Secret("another-secret-value"), "backoffice", identity)) ==
          UnsealError::Kind::authentication);
  }
  SECTION("moved to another credential") {
    CHECK(refusal(unseal_token(blob, key, "storefront-eu", identity)) == UnsealError::Kind::authentication);
  }
  SECTION("kept past an identity change") {
    CredentialConfig other = c;
    other.scope = "market:code:europe";
    CHECK(refusal(unseal_token(blob, key, "backoffice", identity_fingerprint(key, other, auth_url))) ==
          UnsealError::Kind::authentication);
  }
  SECTION("not a record at all") {
    CHECK(refusal(unseal_token("", key, "backoffice", identity)) == UnsealError::Kind::malformed);
    CHECK(refusal(unseal_token("{\"access_token\":\"x\"}", key, "backoffice", identity)) == UnsealError::Kind::malformed);
    CHECK(refusal(unseal_token(store_crypto::random_bytes(300), key, "backoffice", identity)) == UnsealError::Kind::malformed);
  }
  SECTION("a well-sealed record whose content names another credential") {
    // Only a writer holding the key can make one: the content check backs up the AAD.
    StoredToken liar = sample(identity);
    liar.credential = "storefront-eu";
    std::string sealed_as_backoffice = [&] {
      // Seal with the AAD of "backoffice" but content naming another credential.
      std::string header = std::string(sealed_magic) + static_cast<char>(sealed_version) + salt16() + nonce12();
      const Secret k = store_crypto::hkdf_sha256(key.reveal(), salt16(), "cl-tokend token record v1", 32);
      std::string aad = header + "backoffice" + std::string(1, '\0') + identity;
      return header + store_crypto::aes256gcm_seal(k.reveal(), nonce12(), aad, encode_record(liar));
    }();
    CHECK(refusal(unseal_token(sealed_as_backoffice, key, "backoffice", identity)) == UnsealError::Kind::mismatch);
  }
}

TEST_CASE("the identity fingerprint changes with every part of the identity") {
  const CredentialConfig c = backoffice();
  const Secret& key = *c.client_secret;
  const std::string base = identity_fingerprint(key, c, auth_url);
  CHECK(base.size() == 64);
  CHECK(base.find("backoffice") == std::string::npos);
  auto with = [&](auto change) {
    CredentialConfig o = c;
    change(o);
    return identity_fingerprint(*o.client_secret, o, auth_url);
  };
  CHECK(with([](CredentialConfig& o) { o.client_id = "it-other"; }) != base);
  CHECK(with([](CredentialConfig& o) { o.scope = "market:code:europe"; }) != base);
  CHECK(with([](CredentialConfig& o) { o.kind = CredentialKind::sales_channel; }) != base);
  CHECK(with([](CredentialConfig& o) { o.client_secret = Secret("rotated-secret"); }) != base);
  CHECK(identity_fingerprint(key, c, "https://auth.other.test") != base);
  // Length-prefixed fields: moving a character from one field to the next is a change.
  CredentialConfig shifted = c;
  shifted.client_id = "it-backoffic";
  shifted.scope = "emarket:all";
  CHECK(identity_fingerprint(key, shifted, auth_url) != base);
  // The name is not part of the identity: renaming a credential keeps its fingerprint.
  CHECK(with([](CredentialConfig& o) { o.name = "renamed"; }) == base);
}

TEST_CASE("key material: the client secret, else the store key") {
  CredentialConfig integration = backoffice();
  CredentialConfig channel;
  channel.name = "storefront-eu";
  channel.kind = CredentialKind::sales_channel;
  channel.client_id = "sc-storefront-eu";
  StoreConfig store;
  CHECK(store_key_material(integration, store) == &*integration.client_secret);
  CHECK(store_key_material(channel, store) == nullptr);
  CHECK_FALSE(sealing_key(channel, auth_url, store));
  store.key = Secret("0123456789abcdef0123456789abcdef");
  CHECK(store_key_material(channel, store) == &*store.key);
  CHECK(store_key_material(integration, store) == &*integration.client_secret);
  auto k = sealing_key(channel, auth_url, store);
  REQUIRE(k);
  CHECK(k->credential == "storefront-eu");
  CHECK(k->identity == identity_fingerprint(*store.key, channel, auth_url));
  CHECK(k->material.equals(*store.key));
}

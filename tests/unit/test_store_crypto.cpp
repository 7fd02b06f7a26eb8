// The store's primitives against published known answers (RFC 5869, RFC 4231, the GCM
// specification's test case 16), each also checked against Python's `cryptography`.
#include <catch2/catch.hpp>

#include "core/store_crypto.hpp"

using namespace cltoken;
using namespace cltoken::store_crypto;

namespace {
std::string hex(std::string_view h) { return *from_hex(h); }
} // namespace

TEST_CASE("HKDF-SHA256 gives RFC 5869's known answers") {
  const std::string ikm = hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  SECTION("test case 1: salt and info") {
    const Secret okm = hkdf_sha256(ikm, hex("000102030405060708090a0b0c"), hex("f0f1f2f3f4f5f6f7f8f9"), 42);
    CHECK(to_hex(okm.reveal()) == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  }
  SECTION("test case 3: no salt, no info (what identity_fingerprint uses)") {
    const Secret okm = hkdf_sha256(ikm, "", "", 42);
    CHECK(to_hex(okm.reveal()) == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
  }
}

TEST_CASE("HMAC-SHA256 gives RFC 4231's known answer") {
  CHECK(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("AES-256-GCM gives the GCM specification's test case 16 and refuses any change") {
  const std::string key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  const std::string nonce = hex("cafebabefacedbaddecaf888");
  const std::string aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const std::string plaintext = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fc"
                                    "f0e2449a6b525b16aedf5aa0de657ba637b39");
  const std::string expected = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
                               "56828838c5f61e6393ba7a0abcc9f662"
                               "76fc6ece0f4e1768cddf8853bb2d551b"; // tag
  const std::string sealed = aes256gcm_seal(key, nonce, aad, plaintext);
  CHECK(to_hex(sealed) == expected);

  auto opened = aes256gcm_open(key, nonce, aad, sealed);
  REQUIRE(opened);
  CHECK(opened->reveal() == plaintext);

  for (std::size_t i = 0; i < sealed.size(); ++i) {
    std::string bad = sealed;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    CHECK_FALSE(aes256gcm_open(key, nonce, aad, bad)); // ciphertext and tag, every byte
  }
  std::string other_aad = aad;
  other_aad.back() = static_cast<char>(other_aad.back() ^ 0x80);
  CHECK_FALSE(aes256gcm_open(key, nonce, other_aad, sealed));
  std::string other_nonce = nonce;
  other_nonce[0] = static_cast<char>(other_nonce[0] ^ 0x01);
  CHECK_FALSE(aes256gcm_open(key, other_nonce, aad, sealed));
  std::string other_key = key;
  other_key[31] = static_cast<char>(other_key[31] ^ 0x01);
  CHECK_FALSE(aes256gcm_open(other_key, nonce, aad, sealed));
  CHECK_FALSE(aes256gcm_open(key, nonce, aad, sealed.substr(0, 15))); // shorter than a tag
  CHECK_FALSE(aes256gcm_open(key.substr(1), nonce, aad, sealed));     // wrong key size: refused, not thrown
  CHECK_THROWS_AS(aes256gcm_seal(key.substr(1), nonce, aad, plaintext), std::invalid_argument);
  CHECK_THROWS_AS(aes256gcm_seal(key, nonce.substr(1), aad, plaintext), std::invalid_argument);
}

TEST_CASE("random bytes differ from call to call") {
  const std::string a = random_bytes(16);
  const std::string b = random_bytes(16);
  CHECK(a.size() == 16);
  CHECK(a != b); // 2^-128 to fail by chance
}

TEST_CASE("hex and base64 round-trip and refuse malformed text") {
  const std::string all = [] {
    std::string s;
    for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
    return s;
  }();
  CHECK(from_hex(to_hex(all)) == all);
  CHECK(to_hex("\x01\xab") == "01ab");
  CHECK(from_hex("01AB") == std::string("\x01\xab"));
  CHECK_FALSE(from_hex("abc"));
  CHECK_FALSE(from_hex("zz"));

  for (std::size_t n = 0; n < 8; ++n) CHECK(from_base64(to_base64(all.substr(0, n))) == all.substr(0, n));
  CHECK(from_base64(to_base64(all)) == all);
  CHECK(to_base64("foobar") == "Zm9vYmFy"); // RFC 4648 section 10
  CHECK(to_base64("fo") == "Zm8=");
  CHECK(from_base64("Zm8=") == std::string("fo"));
  CHECK_FALSE(from_base64("Zm8"));      // unpadded
  CHECK_FALSE(from_base64(" Zm8="));    // blanks
  CHECK_FALSE(from_base64("Z=m8"));     // padding in the middle
  CHECK_FALSE(from_base64("Zm8*"));     // not base64
  CHECK_FALSE(from_base64("Zg==Zg==")); // padding before the end
}

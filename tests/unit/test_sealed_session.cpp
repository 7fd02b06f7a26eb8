// Sealed session records (core/sealed_session.hpp): the documented layout reproduced by an
// independent implementation, and every way a record can be wrong refused with a reason.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/sealed_envelope.hpp"
#include "core/sealed_session.hpp"
#include "core/store_crypto.hpp"
#include "fake_clock.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

namespace {

const Secret material("s3cr3t-shop-client-secret");
const std::string identity(64, 'a');

SessionKey key_0_to_31() {
  SessionKey k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(i);
  return k;
}

StoredSession sample() {
  StoredSession s;
  s.credential = "shop";
  for (int i = 0; i < 32; ++i) s.identity += "ab";
  s.key = key_0_to_31();
  s.id = session_store_id(material, "shop", s.key);
  s.owner_uid = 1000;
  s.owner_name = "user:alice";
  s.access_token = Secret("eyJhbGciOiJSUzUxMiJ9.customer.signature");
  s.refresh_token = Secret("r3fr3sh");
  s.token_type = "bearer";
  s.scope = "market:all";
  s.owner_id = "xYzCustomer";
  s.obtained_at = WallTime(1795000000s);
  s.expires_at = s.obtained_at + 2h;
  s.refresh_at = s.obtained_at + 1h;
  s.generation = 3;
  return s;
}

std::string bytes_from(int first, int count) {
  std::string s;
  for (int i = first; i < first + count; ++i) s.push_back(static_cast<char>(i));
  return s;
}

UnsealError::Kind refusal(const std::variant<StoredSession, UnsealError>& r) {
  REQUIRE(std::holds_alternative<UnsealError>(r));
  return std::get<UnsealError>(r).kind;
}

} // namespace

// Expected values computed with Python's `cryptography` from the layout in
// core/sealed_session.hpp:
//   idkey = HKDF(SHA256, 32, salt=None, info=b"cl-tokend session id v1").derive(material)
//   id = HMAC(idkey, SHA256) over b"shop\0" + key bytes, as hex
//   header = b"CLSS\x01" + salt + nonce
//   key = HKDF(SHA256, 32, salt, info=b"cl-tokend session record v1").derive(material)
//   blob = header + AESGCM(key).encrypt(nonce, compact JSON in encode_session()'s order,
//                                       header + b"shop\0" + identity + b"\0" + id)
TEST_CASE("session store id and sealed session match an independent implementation") {
  const StoredSession s = sample();
  CHECK(s.id == "9df2654cc7e0523b514c548dc5b5f88c1ea7bf3f57177a9eb026acb91e976451");
  const std::string blob = seal_session(s, material, bytes_from(0, 16), bytes_from(100, 12));
  CHECK(store_crypto::to_hex(blob) ==
        "434c535301000102030405060708090a0b0c0d0e0f6465666768696a6b6c6d6e6f97cd50548081901682279ce472dc04f6329ede8a3d0c56"
        "5f05ae9fbc0623acc20fb2eff160708709c7de1fba0f5f423291f48dda9bcd796bf8bbbe42b2ed491128346c13583920d7172deef18457fc"
        "8dd435628db62d9862a1478e5ed6ae59055a6f17441eaaab1109050a8128d28666eb533df56a0826f47e4bfc1b3a5bde2a3eb5c5c95ef0de"
        "787e64309db9d2024198da8d3c106cb3ca82bb0307d92e78d0274513d086ca997fe122801029c3e836f58b4595a4682d7907cec06a728670"
        "b732e79e4e3432d044999c5901bc2bf092b4dd663082be04862766c5b771f992bc6e070c24d6039200929c1fbb14e69111e5800f844ec372"
        "193be7b5df412298138dff240f12fcd82bc1cafb9ff3d802b9832b04a8c7af891f9f69481916e4f44f537ac639b14fade7b2601326dff57a"
        "6861923df704ad879fce39103c130d191aee7e737dc1037dbe27d386c1b2e712facc7a9e3574ae7b5c05e954d07b82a880cf6036c42c4e57"
        "19d03d6e00516fa54f0ac32b37014456592b9e01570811dd8fc1d46da6c1ecc8a0dcfd2eaabff4d776700653f005aba973372a4aaae6dac2"
        "3ce214b30c39aeaad683fb492914fa996bed413ab9d23f484b9fc4dca88b1b199906860c227e915ef2fe8baa6055f3456c4b2caf9608c571"
        "cb23d199f809ef2baa810ba42ded64335562631d19e3f33783cc405bb06bc3be1cc92ed91a882bc4ff11e8121f36dd63ebda0de4ee12e581"
        "2a8e34841eaef43c84b5b31fb88f9075245203898ff591b5f48e2dbcb1193c3dc5");
}

TEST_CASE("a sealed session opens to the same session, and never shows its tokens in clear") {
  const StoredSession s = sample();
  const std::string blob = seal_session(s, material);
  CHECK(blob.find("eyJhbGciOiJSUzUxMiJ9") == std::string::npos);
  CHECK(blob.find("r3fr3sh") == std::string::npos);
  CHECK(blob != seal_session(s, material)); // fresh salt and nonce each time
  auto opened = unseal_session(blob, material, s.credential, s.identity, s.id);
  REQUIRE(std::holds_alternative<StoredSession>(opened));
  const StoredSession& o = std::get<StoredSession>(opened);
  CHECK(o.key == s.key);
  CHECK(o.owner_uid == 1000);
  CHECK(o.owner_name == "user:alice");
  CHECK(o.access_token.reveal() == s.access_token.reveal());
  REQUIRE(o.refresh_token);
  CHECK(o.refresh_token->reveal() == "r3fr3sh");
  CHECK(o.scope == "market:all");
  CHECK(o.owner_id == "xYzCustomer");
  CHECK(o.obtained_at == s.obtained_at);
  CHECK(o.expires_at == s.expires_at);
  CHECK(o.refresh_at == s.refresh_at);
  CHECK(o.generation == 3);
}

TEST_CASE("a session without a refresh token stays without one") {
  StoredSession s = sample();
  s.refresh_token.reset();
  auto opened = unseal_session(seal_session(s, material), material, s.credential, s.identity, s.id);
  REQUIRE(std::holds_alternative<StoredSession>(opened));
  CHECK_FALSE(std::get<StoredSession>(opened).refresh_token);
}

TEST_CASE("an altered sealed session fails authentication, wherever the byte is") {
  const StoredSession s = sample();
  const std::string blob = seal_session(s, material);
  for (std::size_t at : {std::size_t{5}, std::size_t{21}, std::size_t{40}, blob.size() - 1}) {
    std::string bad = blob;
    bad[at] = static_cast<char>(bad[at] ^ 0x01);
    INFO("byte " << at);
    CHECK(refusal(unseal_session(bad, material, s.credential, s.identity, s.id)) == UnsealError::Kind::authentication);
  }
}

TEST_CASE("a sealed session opens only under its own key, credential, identity and store id") {
  const StoredSession s = sample();
  const std::string blob = seal_session(s, material);
  CHECK(refusal(unseal_session(blob, Secret("another-secret-value"), s.credential, s.identity, s.id)) ==
        UnsealError::Kind::authentication);
  CHECK(refusal(unseal_session(blob, material, "other", s.identity, s.id)) == UnsealError::Kind::authentication);
  CHECK(refusal(unseal_session(blob, material, s.credential, std::string(64, 'c'), s.id)) == UnsealError::Kind::authentication);
  SessionKey other_key = s.key;
  other_key[0] ^= 1;
  const std::string other_id = session_store_id(material, "shop", other_key);
  CHECK(other_id != s.id);
  CHECK(refusal(unseal_session(blob, material, s.credential, s.identity, other_id)) == UnsealError::Kind::authentication);
}

TEST_CASE("the store id depends on the key material, the credential and the session key") {
  const SessionKey k = key_0_to_31();
  const std::string id = session_store_id(material, "shop", k);
  CHECK(id.size() == 64);
  CHECK(session_store_id(Secret("another-secret-value"), "shop", k) != id);
  CHECK(session_store_id(material, "shop2", k) != id);
  CHECK(session_store_id(material, "shop", k) == id);
}

TEST_CASE("a record that names another session inside is refused even when its seal holds") {
  // A writer with the key that sealed one session's content under another's store id.
  const StoredSession s = sample();
  const std::string other_id(64, 'd');
  const EnvelopeKind kind{session_magic, "cl-tokend session record v1", "session record"};
  const std::string bound = s.credential + std::string(1, '\0') + s.identity + std::string(1, '\0') + other_id;
  const std::string blob = seal_envelope(kind, material, bound, encode_session(s));
  CHECK(refusal(unseal_session(blob, material, s.credential, s.identity, other_id)) == UnsealError::Kind::mismatch);
  // The same envelope bound to the id its content names opens.
  const std::string good = s.credential + std::string(1, '\0') + s.identity + std::string(1, '\0') + s.id;
  CHECK(std::holds_alternative<StoredSession>(
      unseal_session(seal_envelope(kind, material, good, encode_session(s)), material, s.credential, s.identity, s.id)));
}

TEST_CASE("malformed sealed sessions are refused, never a crash") {
  const StoredSession s = sample();
  const std::string blob = seal_session(s, material);
  CHECK(refusal(unseal_session("", material, s.credential, s.identity, s.id)) == UnsealError::Kind::malformed);
  CHECK(refusal(unseal_session(blob.substr(0, 40), material, s.credential, s.identity, s.id)) == UnsealError::Kind::malformed);
  std::string token_magic = blob;
  token_magic.replace(0, 4, "CLTK"); // a token record's magic
  CHECK(refusal(unseal_session(token_magic, material, s.credential, s.identity, s.id)) == UnsealError::Kind::malformed);
  std::string newer = blob;
  newer[4] = 2;
  CHECK(refusal(unseal_session(newer, material, s.credential, s.identity, s.id)) == UnsealError::Kind::version);
}

TEST_CASE("encode_session and decode_session round trip") {
  const StoredSession s = sample();
  std::string error;
  auto d = decode_session(encode_session(s), error);
  REQUIRE(d);
  CHECK(error.empty());
  CHECK(d->id == s.id);
  CHECK(d->key == s.key);
  CHECK(d->access_token.reveal() == s.access_token.reveal());
  CHECK(d->generation == 3);
}

TEST_CASE("decode_session refuses every malformed field with a reason") {
  const nlohmann::json good = nlohmann::json::parse(encode_session(sample()));
  struct Case {
    const char* field;
    nlohmann::json value; // null: the field is removed
  };
  const std::vector<Case> cases = {
      {"credential", nullptr},
      {"credential", 5},
      {"identity", nullptr},
      {"identity", true},
      {"id", nullptr},
      {"id", 1},
      {"key", nullptr},
      {"key", "zz"},
      {"key", std::string(62, 'a')},
      {"key", std::string(64, 'g')},
      {"owner_uid", nullptr},
      {"owner_uid", -1},
      {"owner_uid", "1000"},
      {"owner_name", nullptr},
      {"owner_name", 7},
      {"access_token", nullptr},
      {"access_token", ""},
      {"access_token", 3},
      {"token_type", nullptr},
      {"scope", nullptr},
      {"owner_id", nullptr},
      {"owner_id", 9},
      {"obtained_at_ms", nullptr},
      {"obtained_at_ms", "1"},
      {"obtained_at_ms", 1.5},
      {"expires_at_ms", nullptr},
      {"expires_at_ms", 1795000000000},
      {"refresh_at_ms", nullptr},
      {"refresh_at_ms", "x"},
      {"generation", nullptr},
      {"generation", 0},
      {"generation", -3},
      {"refresh_token", 42},
      {"refresh_token", nlohmann::json::array()},
  };
  for (const auto& c : cases) {
    nlohmann::json j = good;
    if (c.value.is_null()) j.erase(c.field);
    else j[c.field] = c.value;
    std::string error;
    INFO(c.field << " = " << (c.value.is_null() ? std::string("(missing)") : c.value.dump()));
    CHECK_FALSE(decode_session(j.dump(), error));
    CHECK_FALSE(error.empty());
  }
  for (const char* text : {"", "[]", "null", "\"session\"", "{", "{\"credential\":\"shop\"}"}) {
    std::string error;
    INFO(text);
    CHECK_FALSE(decode_session(text, error));
    CHECK_FALSE(error.empty());
  }
}

TEST_CASE("a held session and a stored one convert into each other across the clocks") {
  test::FakeClock clock;
  SessionRecord r;
  r.credential = "shop";
  r.owner = 1000;
  r.access_token = Secret("access");
  r.refresh_token = Secret("refresh");
  r.obtained = clock.now();
  r.expires_at = clock.now() + 2h;
  r.refresh_at = clock.now() + 1h;
  r.generation = 4;
  const StoredSession s = to_stored_session(r, key_0_to_31(), identity, std::string(64, 'e'), "user:alice", clock);
  CHECK(s.obtained_at == clock.wall_now());
  CHECK(s.expires_at == clock.wall_now() + 2h);
  CHECK(s.owner_uid == 1000);
  clock.advance(30min); // read back later: the remaining time is the same
  const SessionRecord back = to_session_record(s, 1001, clock);
  CHECK(back.owner == 1001);
  CHECK(back.expires_at == clock.now() + 90min);
  CHECK(back.refresh_at == clock.now() + 30min);
  CHECK(back.obtained == clock.now() - 30min);
  CHECK(back.generation == 4);
  CHECK(back.refresh_token->reveal() == "refresh");
}

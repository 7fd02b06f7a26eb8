#include "core/sealed_session.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/sealed_envelope.hpp"
#include "core/store_crypto.hpp"

namespace cltoken {

namespace {

using json = nlohmann::ordered_json;

constexpr EnvelopeKind session_envelope{session_magic, "cl-tokend session record v1", "session record"};
constexpr std::string_view id_info = "cl-tokend session id v1";

std::int64_t unix_ms(WallTime t) { return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count(); }
WallTime from_unix_ms(std::int64_t ms) { return WallTime(std::chrono::duration_cast<WallTime::duration>(Millis(ms))); }

std::string bound_data(std::string_view credential, std::string_view identity, std::string_view id) {
  std::string out(credential); // credential names never contain NUL (config valid_name)
  out.push_back('\0');
  out.append(identity);
  out.push_back('\0');
  out.append(id);
  return out;
}

void wipe_tokens(json& j) {
  for (const char* key : {"access_token", "refresh_token"})
    if (j.is_object() && j.contains(key) && j[key].is_string()) wipe(j[key].get_ref<std::string&>());
}

} // namespace

std::string session_store_id(const Secret& material, std::string_view credential, const SessionKey& key) {
  const Secret id_key = store_crypto::hkdf_sha256(material.reveal(), "", id_info, store_crypto::key_size);
  std::string data(credential);
  data.push_back('\0');
  data.append(reinterpret_cast<const char*>(key.data()), key.size());
  return store_crypto::to_hex(store_crypto::hmac_sha256(id_key.reveal(), data));
}

std::string encode_session(const StoredSession& s) {
  json j{{"credential", s.credential},
         {"identity", s.identity},
         {"id", s.id},
         {"key", store_crypto::to_hex(std::string_view(reinterpret_cast<const char*>(s.key.data()), s.key.size()))},
         {"owner_uid", s.owner_uid},
         {"owner_name", s.owner_name},
         {"access_token", s.access_token.reveal()},
         {"token_type", s.token_type},
         {"scope", s.scope},
         {"owner_id", s.owner_id},
         {"obtained_at_ms", unix_ms(s.obtained_at)},
         {"expires_at_ms", unix_ms(s.expires_at)},
         {"refresh_at_ms", unix_ms(s.refresh_at)},
         {"generation", s.generation}};
  if (s.refresh_token) j["refresh_token"] = s.refresh_token->reveal();
  std::string out = j.dump();
  wipe_tokens(j);
  return out;
}

std::optional<StoredSession> decode_session(std::string_view text, std::string& error) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto fail = [&](std::string why) -> std::optional<StoredSession> {
    wipe_tokens(j);
    error = std::move(why);
    return std::nullopt;
  };
  if (!j.is_object()) return fail("the session is not a JSON object");
  for (const char* key : {"credential", "identity", "id", "key", "owner_name", "access_token", "token_type", "scope", "owner_id"})
    if (!j.contains(key) || !j[key].is_string()) return fail(std::string("the session has no string \"") + key + "\"");
  for (const char* key : {"obtained_at_ms", "expires_at_ms", "refresh_at_ms"})
    if (!j.contains(key) || !j[key].is_number_integer()) return fail(std::string("the session has no integer \"") + key + "\"");
  for (const char* key : {"owner_uid", "generation"})
    if (!j.contains(key) || !j[key].is_number_unsigned()) return fail(std::string("the session has no count \"") + key + "\"");
  if (j.contains("refresh_token") && !j["refresh_token"].is_string()) return fail("the session's refresh_token is not a string");
  StoredSession s;
  s.credential = j["credential"].get<std::string>();
  s.identity = j["identity"].get<std::string>();
  s.id = j["id"].get<std::string>();
  const auto key = store_crypto::from_hex(j["key"].get<std::string>());
  if (!key || key->size() != s.key.size()) return fail("the session's key is not 64 hex digits");
  std::copy(key->begin(), key->end(), s.key.begin());
  s.owner_uid = static_cast<uid_t>(j["owner_uid"].get<std::uint64_t>());
  s.owner_name = j["owner_name"].get<std::string>();
  s.access_token = Secret(std::move(j["access_token"].get_ref<std::string&>()));
  if (j.contains("refresh_token")) s.refresh_token = Secret(std::move(j["refresh_token"].get_ref<std::string&>()));
  s.token_type = j["token_type"].get<std::string>();
  s.scope = j["scope"].get<std::string>();
  s.owner_id = j["owner_id"].get<std::string>();
  s.obtained_at = from_unix_ms(j["obtained_at_ms"].get<std::int64_t>());
  s.expires_at = from_unix_ms(j["expires_at_ms"].get<std::int64_t>());
  s.refresh_at = from_unix_ms(j["refresh_at_ms"].get<std::int64_t>());
  s.generation = j["generation"].get<std::uint64_t>();
  if (s.access_token.empty()) return fail("the session's access_token is empty");
  if (s.expires_at <= s.obtained_at) return fail("the session expires before it was obtained");
  if (s.generation == 0) return fail("the session's generation is 0");
  return s;
}

std::string seal_session(const StoredSession& s, const Secret& material, std::string_view salt, std::string_view nonce) {
  std::string plaintext = encode_session(s);
  try {
    std::string sealed =
        seal_envelope(session_envelope, material, bound_data(s.credential, s.identity, s.id), plaintext, salt, nonce);
    wipe(plaintext);
    return sealed;
  } catch (...) {
    wipe(plaintext);
    throw;
  }
}

std::string seal_session(const StoredSession& s, const Secret& material) {
  return seal_session(s, material, store_crypto::random_bytes(sealed_salt_size),
                      store_crypto::random_bytes(store_crypto::nonce_size));
}

std::variant<StoredSession, UnsealError> unseal_session(std::string_view sealed, const Secret& material,
                                                        std::string_view credential, std::string_view identity,
                                                        std::string_view id) {
  auto opened = open_envelope(session_envelope, sealed, material, bound_data(credential, identity, id));
  if (auto* bad = std::get_if<UnsealError>(&opened)) return std::move(*bad);
  std::string why;
  auto s = decode_session(std::get<Secret>(opened).reveal(), why);
  if (!s) return UnsealError{UnsealError::Kind::malformed, "session record content is invalid: " + why};
  // Bound by the associated data already; checking the content too catches a writer that
  // sealed one session under another's name.
  if (s->credential != credential || s->identity != identity || s->id != id)
    return UnsealError{UnsealError::Kind::mismatch, "session record names another credential, identity or session"};
  return std::move(*s);
}

StoredSession to_stored_session(const SessionRecord& r, const SessionKey& key, std::string identity, std::string id,
                                std::string owner_name, const Clock& clock) {
  StoredSession s;
  s.key = key;
  s.credential = r.credential;
  s.identity = std::move(identity);
  s.id = std::move(id);
  s.owner_uid = r.owner;
  s.owner_name = std::move(owner_name);
  s.access_token = r.access_token;
  s.refresh_token = r.refresh_token;
  s.token_type = r.token_type;
  s.scope = r.scope;
  s.owner_id = r.owner_id;
  s.obtained_at = clock.to_wall(r.obtained);
  s.expires_at = clock.to_wall(r.expires_at);
  s.refresh_at = clock.to_wall(r.refresh_at);
  s.generation = r.generation;
  return s;
}

SessionRecord to_session_record(const StoredSession& s, uid_t owner, const Clock& clock) {
  const SteadyTime now = clock.now();
  const WallTime wall_now = clock.wall_now();
  auto steady = [&](WallTime w) { return now + std::chrono::duration_cast<SteadyClock::duration>(w - wall_now); };
  SessionRecord r;
  r.credential = s.credential;
  r.owner = owner;
  r.access_token = s.access_token;
  r.refresh_token = s.refresh_token;
  r.token_type = s.token_type;
  r.scope = s.scope;
  r.owner_id = s.owner_id;
  r.obtained = steady(s.obtained_at);
  r.expires_at = steady(s.expires_at);
  r.refresh_at = steady(s.refresh_at);
  r.generation = s.generation;
  return r;
}

} // namespace cltoken

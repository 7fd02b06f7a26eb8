#include "core/store_record.hpp"

#include <nlohmann/json.hpp>

namespace cltoken {

using json = nlohmann::ordered_json;

namespace {

std::int64_t unix_ms(WallTime t) { return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count(); }
WallTime from_unix_ms(std::int64_t ms) { return WallTime(std::chrono::duration_cast<WallTime::duration>(Millis(ms))); }

} // namespace

std::string encode_record(const StoredToken& t) {
  json j{{"credential", t.credential},
         {"identity", t.identity},
         {"access_token", t.access_token.reveal()},
         {"token_type", t.token_type},
         {"scope", t.scope},
         {"obtained_at_ms", unix_ms(t.obtained_at)},
         {"expires_at_ms", unix_ms(t.expires_at)}};
  // Only when counted, so a record without one reads exactly as before it existed.
  if (t.generation != 0) j["generation"] = t.generation;
  std::string out = j.dump();
  wipe(j["access_token"].get_ref<std::string&>());
  return out;
}

std::optional<StoredToken> decode_record(std::string_view text, std::string& error) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto fail = [&](std::string why) -> std::optional<StoredToken> {
    if (j.is_object() && j.contains("access_token") && j["access_token"].is_string())
      wipe(j["access_token"].get_ref<std::string&>());
    error = std::move(why);
    return std::nullopt;
  };
  if (!j.is_object()) return fail("the record is not a JSON object");
  for (const char* key : {"credential", "identity", "access_token", "token_type", "scope"})
    if (!j.contains(key) || !j[key].is_string()) return fail(std::string("the record has no string \"") + key + "\"");
  for (const char* key : {"obtained_at_ms", "expires_at_ms"})
    if (!j.contains(key) || !j[key].is_number_integer()) return fail(std::string("the record has no integer \"") + key + "\"");
  StoredToken t;
  t.credential = j["credential"].get<std::string>();
  t.identity = j["identity"].get<std::string>();
  t.access_token = Secret(std::move(j["access_token"].get_ref<std::string&>()));
  t.token_type = j["token_type"].get<std::string>();
  t.scope = j["scope"].get<std::string>();
  t.obtained_at = from_unix_ms(j["obtained_at_ms"].get<std::int64_t>());
  t.expires_at = from_unix_ms(j["expires_at_ms"].get<std::int64_t>());
  if (j.contains("generation")) {
    if (!j["generation"].is_number_unsigned()) return fail("the record's \"generation\" is not a count");
    t.generation = j["generation"].get<std::uint64_t>();
  }
  if (t.access_token.empty()) return fail("the record's access_token is empty");
  if (t.expires_at <= t.obtained_at) return fail("the record expires before it was obtained");
  return t;
}

StoredToken to_stored(const CachedToken& t, std::string credential, std::string identity, const Clock& clock) {
  StoredToken s;
  s.credential = std::move(credential);
  s.identity = std::move(identity);
  s.access_token = t.access_token;
  s.token_type = t.token_type;
  s.scope = t.scope;
  s.obtained_at = clock.to_wall(t.obtained_at);
  s.expires_at = clock.to_wall(t.expires_at);
  return s;
}

CachedToken to_cached(const StoredToken& t, const Clock& clock) {
  const SteadyTime now = clock.now();
  const WallTime wall_now = clock.wall_now();
  auto steady = [&](WallTime w) { return now + std::chrono::duration_cast<SteadyClock::duration>(w - wall_now); };
  CachedToken c;
  c.access_token = t.access_token;
  c.token_type = t.token_type;
  c.scope = t.scope;
  c.obtained_at = steady(t.obtained_at);
  c.expires_at = steady(t.expires_at);
  c.lifetime = std::chrono::floor<Seconds>(t.expires_at - t.obtained_at);
  c.refresh_at = c.expires_at; // adopt() chooses the real one, with this daemon's jitter
  return c;
}

} // namespace cltoken

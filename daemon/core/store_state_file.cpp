#include "core/store_state_file.hpp"

#include <nlohmann/json.hpp>

#include "core/store_crypto.hpp"

namespace cltoken {

using json = nlohmann::ordered_json;

namespace {
constexpr std::string_view format_name = "cl-tokend state";
constexpr int format_version = 1;
} // namespace

namespace {
std::int64_t unix_ms(WallTime t) { return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count(); }
WallTime from_unix_ms(std::int64_t ms) { return WallTime(std::chrono::duration_cast<WallTime::duration>(Millis(ms))); }
} // namespace

std::string render_state_file(const StateFile& state) {
  json list = json::array();
  for (const auto& r : state.records)
    list.push_back({{"credential", r.credential},
                    {"identity", r.identity},
                    {"expires_at_ms", unix_ms(r.expires_at)},
                    {"generation", r.generation},
                    {"sealed", store_crypto::to_base64(r.sealed)}});
  json doc{{"format", format_name}, {"version", format_version}, {"records", std::move(list)}};
  if (!state.key_sets.empty()) {
    json sets = json::array();
    for (const auto& k : state.key_sets)
      sets.push_back(
          {{"identity", k.identity}, {"fetched_at_ms", unix_ms(k.fetched_at)}, {"sealed", store_crypto::to_base64(k.sealed)}});
    doc["key_sets"] = std::move(sets);
  }
  return doc.dump(1) + "\n";
}

std::optional<StateFile> parse_state_file(std::string_view text, std::string& error) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    error = "not a JSON object";
    return std::nullopt;
  }
  if (!doc.contains("format") || doc["format"] != format_name) {
    error = "not a cl-tokend state file (no \"format\": \"cl-tokend state\")";
    return std::nullopt;
  }
  if (!doc.contains("version") || !doc["version"].is_number_integer() || doc["version"] != format_version) {
    error = "state file version " + (doc.contains("version") ? doc["version"].dump() : std::string("(none)")) +
            " is not supported by this cl-tokend (version 1)";
    return std::nullopt;
  }
  if (!doc.contains("records") || !doc["records"].is_array()) {
    error = "the state file has no \"records\" array";
    return std::nullopt;
  }
  StateFile out;
  for (const auto& r : doc["records"]) {
    const std::string where = "record " + std::to_string(out.records.size() + 1);
    if (!r.is_object() || !r.contains("credential") || !r["credential"].is_string() || !r.contains("identity") ||
        !r["identity"].is_string() || !r.contains("expires_at_ms") || !r["expires_at_ms"].is_number_integer() ||
        !r.contains("sealed") || !r["sealed"].is_string()) {
      error = where + " lacks credential, identity, expires_at_ms or sealed";
      return std::nullopt;
    }
    auto sealed = store_crypto::from_base64(r["sealed"].get<std::string>());
    if (!sealed) {
      error = where + ": \"sealed\" is not base64";
      return std::nullopt;
    }
    StateRecord rec;
    rec.credential = r["credential"].get<std::string>();
    rec.identity = r["identity"].get<std::string>();
    rec.expires_at = from_unix_ms(r["expires_at_ms"].get<std::int64_t>());
    if (r.contains("generation")) {
      if (!r["generation"].is_number_unsigned()) {
        error = where + ": \"generation\" is not a count";
        return std::nullopt;
      }
      rec.generation = r["generation"].get<std::uint64_t>();
    }
    rec.sealed = std::move(*sealed);
    out.records.push_back(std::move(rec));
  }
  if (doc.contains("key_sets")) {
    if (!doc["key_sets"].is_array()) {
      error = "\"key_sets\" is not an array";
      return std::nullopt;
    }
    for (const auto& k : doc["key_sets"]) {
      const std::string where = "key set " + std::to_string(out.key_sets.size() + 1);
      if (!k.is_object() || !k.contains("identity") || !k["identity"].is_string() || !k.contains("fetched_at_ms") ||
          !k["fetched_at_ms"].is_number_integer() || !k.contains("sealed") || !k["sealed"].is_string()) {
        error = where + " lacks identity, fetched_at_ms or sealed";
        return std::nullopt;
      }
      auto sealed = store_crypto::from_base64(k["sealed"].get<std::string>());
      if (!sealed) {
        error = where + ": \"sealed\" is not base64";
        return std::nullopt;
      }
      out.key_sets.push_back(
          {k["identity"].get<std::string>(), from_unix_ms(k["fetched_at_ms"].get<std::int64_t>()), std::move(*sealed)});
    }
  }
  return out;
}

} // namespace cltoken

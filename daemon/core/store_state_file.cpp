#include "core/store_state_file.hpp"

#include <nlohmann/json.hpp>

#include "core/store_crypto.hpp"

namespace cltoken {

using json = nlohmann::ordered_json;

namespace {
constexpr std::string_view format_name = "cl-tokend state";
constexpr int format_version = 1;
} // namespace

std::string render_state_file(const std::vector<StateRecord>& records) {
  json list = json::array();
  for (const auto& r : records)
    list.push_back({{"credential", r.credential},
                    {"identity", r.identity},
                    {"expires_at_ms", std::chrono::duration_cast<Millis>(r.expires_at.time_since_epoch()).count()},
                    {"sealed", store_crypto::to_base64(r.sealed)}});
  json doc{{"format", format_name}, {"version", format_version}, {"records", std::move(list)}};
  return doc.dump(1) + "\n";
}

std::optional<std::vector<StateRecord>> parse_state_file(std::string_view text, std::string& error) {
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
  std::vector<StateRecord> out;
  for (const auto& r : doc["records"]) {
    const std::string where = "record " + std::to_string(out.size() + 1);
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
    rec.expires_at = WallTime(std::chrono::duration_cast<WallTime::duration>(Millis(r["expires_at_ms"].get<std::int64_t>())));
    rec.sealed = std::move(*sealed);
    out.push_back(std::move(rec));
  }
  return out;
}

} // namespace cltoken

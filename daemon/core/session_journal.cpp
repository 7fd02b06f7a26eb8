#include "core/session_journal.hpp"

#include <nlohmann/json.hpp>

#include "core/store_crypto.hpp"

namespace cltoken {

namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view format_name = "cl-tokend sessions";
constexpr int format_version = 1;

std::int64_t unix_ms(WallTime t) { return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count(); }
WallTime from_unix_ms(std::int64_t ms) { return WallTime(std::chrono::duration_cast<WallTime::duration>(Millis(ms))); }

bool hex64(const json& v) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

} // namespace

std::string render_journal_header() { return json{{"format", format_name}, {"version", format_version}}.dump() + "\n"; }

std::optional<std::string> journal_header_error(std::string_view line) {
  const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("format") || j["format"] != format_name)
    return std::string("its first line is not a cl-tokend sessions journal header");
  if (!j.contains("version") || !j["version"].is_number_integer()) return std::string("its header has no version");
  if (j["version"] != format_version)
    return "it is version " + j["version"].dump() + ", this cl-tokend reads version " + std::to_string(format_version);
  return std::nullopt;
}

std::string render_journal_put(const JournalPut& put) {
  return json{{"put", put.id},
              {"credential", put.credential},
              {"identity", put.identity},
              {"expires_at_ms", unix_ms(put.expires_at)},
              {"sealed", store_crypto::to_base64(put.sealed)}}
             .dump() +
         "\n";
}

std::string render_journal_del(std::string_view id) { return json{{"del", id}}.dump() + "\n"; }

std::optional<JournalEntry> parse_journal_line(std::string_view line, std::string& error) {
  if (line.size() > max_journal_line) {
    error = "the line is longer than " + std::to_string(max_journal_line) + " bytes";
    return std::nullopt;
  }
  const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    error = "the line is not a JSON object";
    return std::nullopt;
  }
  if (j.contains("del")) {
    if (!hex64(j["del"]) || j.size() != 1) {
      error = "a del line holds one store id of 64 hex digits";
      return std::nullopt;
    }
    return JournalDel{j["del"].get<std::string>()};
  }
  if (!j.contains("put")) {
    error = "the line is neither a put nor a del";
    return std::nullopt;
  }
  if (!hex64(j["put"]) || !j.contains("identity") || !hex64(j["identity"])) {
    error = "a put line's store id and identity are 64 hex digits";
    return std::nullopt;
  }
  if (!j.contains("credential") || !j["credential"].is_string() || j["credential"].get_ref<const std::string&>().empty()) {
    error = "a put line names its credential";
    return std::nullopt;
  }
  if (!j.contains("expires_at_ms") || !j["expires_at_ms"].is_number_integer()) {
    error = "a put line has an integer expires_at_ms";
    return std::nullopt;
  }
  if (!j.contains("sealed") || !j["sealed"].is_string()) {
    error = "a put line has a sealed record";
    return std::nullopt;
  }
  auto sealed = store_crypto::from_base64(j["sealed"].get_ref<const std::string&>());
  if (!sealed || sealed->empty()) {
    error = "a put line's sealed record is not base64";
    return std::nullopt;
  }
  return JournalPut{j["put"].get<std::string>(), j["credential"].get<std::string>(), j["identity"].get<std::string>(),
                    from_unix_ms(j["expires_at_ms"].get<std::int64_t>()), std::move(*sealed)};
}

WallTime stored_session_expiry(const StoredSession& s, std::chrono::seconds refresh_token_lifetime) {
  if (s.refresh_token) return s.obtained_at + std::chrono::duration_cast<WallTime::duration>(refresh_token_lifetime);
  return s.expires_at;
}

void JournalIndex::put(std::string id, std::uint64_t offset, std::uint32_t length, WallTime expires_at) {
  ++lines_;
  live_.insert_or_assign(std::move(id), Live{offset, length, expires_at});
}

void JournalIndex::del(const std::string& id) {
  ++lines_;
  live_.erase(id);
}

std::uint64_t max_journal_size(std::size_t max_sessions) {
  // Live lines, as many dead ones plus the floor before a compaction, the header.
  const std::uint64_t lines = 2 * static_cast<std::uint64_t>(max_sessions) + journal_compaction_floor + 2;
  return lines * (max_journal_line + 1);
}

} // namespace cltoken

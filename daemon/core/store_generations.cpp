#include "core/store_generations.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cltoken {

namespace {
using json = nlohmann::ordered_json;
constexpr std::string_view format_name = "cl-tokend generations";
} // namespace

std::string render_generations(const Generations& g) {
  json list = json::object();
  for (const auto& [name, n] : g) list[name] = n;
  return json{{"format", format_name}, {"version", 1}, {"generations", std::move(list)}}.dump() + "\n";
}

std::optional<Generations> parse_generations(std::string_view text, std::string& error) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("format") || doc["format"] != format_name || !doc.contains("version") ||
      doc["version"] != 1 || !doc.contains("generations") || !doc["generations"].is_object()) {
    error = "not a cl-tokend generations file (version 1)";
    return std::nullopt;
  }
  Generations out;
  for (const auto& [name, n] : doc["generations"].items()) {
    if (!n.is_number_unsigned()) {
      error = fmt::format("the generation of {} is not a count", name);
      return std::nullopt;
    }
    out.emplace(name, n.get<std::uint64_t>());
  }
  return out;
}

std::optional<std::string> rolled_back(std::uint64_t record, std::optional<std::uint64_t> anchored) {
  if (!anchored || record >= *anchored) return std::nullopt;
  return fmt::format("it is generation {}, and this daemon has since saved or removed generation {}: the state file "
                     "was put back from an older copy",
                     record, *anchored);
}

} // namespace cltoken

#include "core/client_json.hpp"

#include <vector>

#include "core/secret.hpp"

namespace cltoken {

bool json_depth_within(std::string_view text, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

nlohmann::json parse_client_json(std::string_view text) {
  if (!json_depth_within(text, max_client_json_depth)) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

void wipe_json(nlohmann::json& j) {
  // Keys of an object are const in nlohmann::json; they name fields of the
  // protocol, while the secrets a body carries are values.
  std::vector<nlohmann::json*> pending{&j};
  while (!pending.empty()) {
    nlohmann::json* v = pending.back();
    pending.pop_back();
    if (v->is_string()) wipe(v->get_ref<std::string&>());
    else if (v->is_structured())
      for (auto& child : *v) pending.push_back(&child);
  }
}

} // namespace cltoken

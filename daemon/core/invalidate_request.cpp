#include "core/invalidate_request.hpp"

#include "core/client_json.hpp"

namespace cltoken {

std::optional<Secret> parse_invalidate_request(std::string& body) {
  auto j = parse_client_json(body);
  wipe(body);
  std::optional<Secret> out;
  if (j.is_discarded()) return out;
  if (j.is_object())
    if (auto it = j.find("access_token"); it != j.end() && it->is_string()) out.emplace(it->get<std::string>());
  wipe_json(j);
  return out;
}

} // namespace cltoken

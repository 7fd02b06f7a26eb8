#pragma once
// Wiping a parsed request document: its strings may hold a password, a secret or a token.
#include <string>

#include <nlohmann/json.hpp>

#include "core/secret.hpp"

namespace cltoken {

/// Wipes every string in `j`, however deeply nested.
inline void wipe_json(nlohmann::json& j) {
  if (j.is_string()) wipe(j.get_ref<std::string&>());
  else if (j.is_structured())
    for (auto& v : j) wipe_json(v);
}

} // namespace cltoken

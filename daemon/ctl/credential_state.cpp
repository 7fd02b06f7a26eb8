#include "credential_state.hpp"

#include <nlohmann/json.hpp>

#include "ctl_error.hpp"

namespace cltoken::ctl {

bool is_serving(std::string_view state) noexcept { return state == "fresh" || state == "refreshing" || state == "stale"; }

Colour state_colour(std::string_view state) noexcept {
  if (state == "fresh") return Colour::green;
  if (state == "refreshing" || state == "fetching") return Colour::cyan;
  if (state == "stale") return Colour::yellow;
  if (state == "expired" || state == "failing") return Colour::red;
  if (state == "empty") return Colour::dim;
  return Colour::none;
}

ExitCode status_exit_code(const Document& status) {
  const auto credentials = status.find("credentials");
  if (credentials == status.end() || !credentials->is_array()) {
    throw CtlError(ExitCode::unreachable, "the status document from cl-tokend has no credentials list");
  }
  for (const auto& credential : *credentials) {
    const auto state = credential.is_object() ? credential.find("state") : credential.end();
    if (state == credential.end() || !state->is_string()) return ExitCode::refused;
    if (!is_serving(state->get_ref<const std::string&>())) return ExitCode::refused;
  }
  return ExitCode::ok;
}

} // namespace cltoken::ctl

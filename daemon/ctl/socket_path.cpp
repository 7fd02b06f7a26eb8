#include "socket_path.hpp"

namespace cltoken::ctl {

std::string resolve_socket_path(const std::optional<std::string>& flag, const char* env_value) {
  if (flag) return *flag;
  if (env_value != nullptr && *env_value != '\0') return env_value;
  return std::string(default_socket_path);
}

} // namespace cltoken::ctl

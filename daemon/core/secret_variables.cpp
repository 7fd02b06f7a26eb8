#include "core/secret_variables.hpp"

#include <cstdlib>
#include <cstring>
#include <map>

#include "core/secret.hpp"

namespace cltoken {

std::optional<std::string> take_secret_variable(const std::string& name) {
  // One daemon thread reads config (start and reload run on the io_context), so no lock.
  static std::map<std::string, std::optional<Secret>> taken;
  if (auto it = taken.find(name); it != taken.end()) {
    if (!it->second) return std::nullopt;
    return std::string(it->second->reveal());
  }
  char* value = std::getenv(name.c_str());
  if (value == nullptr) {
    taken.emplace(name, std::nullopt);
    return std::nullopt;
  }
  std::string copy(value);
  taken.emplace(name, Secret(copy));
  // The bytes live in the block the kernel shows as /proc/PID/environ (or in a setenv()
  // copy): overwrite them in place, then drop the entry from environ.
  explicit_bzero(value, std::strlen(value));
  unsetenv(name.c_str());
  return copy;
}

} // namespace cltoken

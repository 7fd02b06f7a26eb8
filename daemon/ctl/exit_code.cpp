#include "exit_code.hpp"

namespace cltoken::ctl {

ExitCode exit_code_for_http_status(int status) noexcept {
  if (status >= 200 && status <= 299) return ExitCode::ok;
  if (status >= 400 && status <= 499) return ExitCode::refused;
  if (status == 503) return ExitCode::refused;
  return ExitCode::unreachable;
}

} // namespace cltoken::ctl

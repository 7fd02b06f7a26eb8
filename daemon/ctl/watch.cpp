#include "watch.hpp"

#include <ostream>

#include "ansi.hpp"
#include "ctl_error.hpp"
#include "error_line.hpp"

namespace cltoken::ctl {

ExitCode watch(const std::function<Outcome()>& frame, const WatchOptions& options, std::ostream& out, std::ostream& err,
               const WaitForNext& wait) {
  do {
    std::string text;
    std::string error;
    try {
      text = frame().out;
    } catch (const CtlError& failure) {
      error = error_line(failure.what());
    }
    // Build the frame first and write it at once, so the screen is never blank for the
    // length of a request.
    if (options.redraw) out << clear_screen;
    out << text << std::flush;
    if (!error.empty()) err << error << std::flush;
  } while (wait(options.interval));
  return ExitCode::ok;
}

} // namespace cltoken::ctl

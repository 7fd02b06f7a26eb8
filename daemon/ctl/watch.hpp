// `status --watch`: show a frame, wait, show the next, until the user stops it.
#pragma once

#include <chrono>
#include <functional>
#include <iosfwd>

#include "commands.hpp"

namespace cltoken::ctl {

/// Waits for the next frame; false when the watch should end (Ctrl-C). WatchClock::wait in
/// the program, a counter in tests.
using WaitForNext = std::function<bool(std::chrono::milliseconds)>;

struct WatchOptions {
  std::chrono::milliseconds interval{2000};
  /// Clear the screen before each frame (stdout is a terminal, not --json): the table is
  /// redrawn in place. Otherwise frames are appended, which suits a log or --json.
  bool redraw = false;
};

/// Shows frame() on `out` every interval. A frame that throws CtlError shows its error line
/// on `err` and the watch goes on: watching a daemon restart is one reason to watch.
/// Returns ExitCode::ok when wait says stop.
ExitCode watch(const std::function<Outcome()>& frame, const WatchOptions& options, std::ostream& out, std::ostream& err,
               const WaitForNext& wait);

} // namespace cltoken::ctl

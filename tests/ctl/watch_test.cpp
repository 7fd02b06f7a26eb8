#include <catch2/catch.hpp>

#include <csignal>
#include <sstream>

#include "ansi.hpp"
#include "ctl_error.hpp"
#include "watch.hpp"
#include "watch_clock.hpp"

using namespace cltoken::ctl;
using namespace std::chrono_literals;

namespace {

/// Lets `frames` frames through, then says stop; records the intervals it was asked for.
struct CountingWait {
  int frames;
  std::vector<std::chrono::milliseconds> asked;

  WaitForNext function() {
    return [this](std::chrono::milliseconds interval) {
      asked.push_back(interval);
      return static_cast<int>(asked.size()) < frames;
    };
  }
};

} // namespace

TEST_CASE("watch redraws each frame in place on a terminal", "[watch]") {
  int calls = 0;
  auto frame = [&calls] { return Outcome{ExitCode::refused, "frame " + std::to_string(++calls) + "\n"}; };
  CountingWait wait{3, {}};
  std::ostringstream out;
  std::ostringstream err;
  CHECK(watch(frame, {1500ms, true}, out, err, wait.function()) == ExitCode::ok);
  const std::string clear(clear_screen);
  CHECK(out.str() == clear + "frame 1\n" + clear + "frame 2\n" + clear + "frame 3\n");
  CHECK(err.str().empty());
  CHECK(wait.asked == std::vector<std::chrono::milliseconds>{1500ms, 1500ms, 1500ms});
}

TEST_CASE("watch appends frames when not redrawing", "[watch]") {
  auto frame = [] { return Outcome{ExitCode::ok, "{}\n"}; };
  CountingWait wait{2, {}};
  std::ostringstream out;
  std::ostringstream err;
  (void)watch(frame, {2000ms, false}, out, err, wait.function());
  CHECK(out.str() == "{}\n{}\n");
}

TEST_CASE("watch shows an unreachable daemon and keeps watching", "[watch]") {
  int calls = 0;
  auto frame = [&calls]() -> Outcome {
    if (++calls == 1) throw CtlError(ExitCode::unreachable, "cannot connect to /s: Connection refused");
    return Outcome{ExitCode::ok, "back\n"};
  };
  CountingWait wait{2, {}};
  std::ostringstream out;
  std::ostringstream err;
  CHECK(watch(frame, {10ms, false}, out, err, wait.function()) == ExitCode::ok);
  CHECK(err.str() == "cl-tokenctl: cannot connect to /s: Connection refused\n");
  CHECK(out.str() == "back\n");
}

TEST_CASE("the watch clock waits, and a stop signal ends the wait at once", "[watch]") {
  WatchClock clock;
  CHECK(clock.wait(1ms));
  // Ctrl-C: the signal is caught by the clock, not fatal, and the next (long) wait returns
  // false at once. If it did not, this test would hang until ctest's timeout.
  std::raise(SIGINT);
  CHECK_FALSE(clock.wait(std::chrono::hours(1)));
  CHECK_FALSE(clock.wait(std::chrono::hours(1)));
}

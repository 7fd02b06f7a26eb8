#pragma once
// How a harness reports what it found besides a crash: one line on stderr, then abort, so
// libFuzzer (and the replay in ctest) stops there and keeps the input.
#include <cstdio>
#include <cstdlib>

[[noreturn]] inline void finding(const char* what) {
  std::fprintf(stderr, "FINDING: %s\n", what);
  std::abort();
}

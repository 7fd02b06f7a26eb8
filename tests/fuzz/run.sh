#!/bin/bash
# Builds the libFuzzer harnesses with clang-14 (ASan + UBSan) in their own build folder
# and runs each one for a bounded time, starting from the seed corpus in tests/fuzz/corpus.
# Exits non-zero on any finding; the crashing input is left in $BUILD/artifacts/NAME/.
# Make it a regression test: copy it into tests/fuzz/corpus/NAME/ (ctest replays it).
#
#   tests/fuzz/run.sh                 every harness, FUZZ_SECONDS (default 25) each
#   FUZZ_SECONDS=300 tests/fuzz/run.sh request
#   FUZZ_SECONDS=600 FUZZ_RUNS=10000000 tests/fuzz/run.sh   ten million runs or 600 s each
#   FUZZ_BUILD_ONLY=1 tests/fuzz/run.sh     build the harnesses, run nothing
#
# Needs: clang-14 and libfuzzer-14-dev (Debian 12). BUILD defaults to build-fuzz.
set -euo pipefail

SOURCE=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(realpath -m "${BUILD:-$SOURCE/build-fuzz}")
SECONDS_EACH=${FUZZ_SECONDS:-25}
RUNS=${FUZZ_RUNS:--1}   # libFuzzer's -runs: -1 = no limit but the time
JOBS=${JOBS:-2}
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(request body token_response config jwt)
# The longest input worth trying per harness: a few requests, a body as large as a raised
# server.max_body_bytes allows (deep nesting needs room), a response, a config file, a token.
declare -A MAX_LEN=([request]=8192 [body]=262144 [token_response]=4096 [config]=8192 [jwt]=8192)

for tool in clang-14 clang++-14; do
  command -v "$tool" > /dev/null || { echo "run.sh: $tool is missing (apt-get install clang-14 libfuzzer-14-dev)" >&2; exit 2; }
done

mkdir -p "$BUILD"
cmake -S "$SOURCE" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DCLTOKEN_FUZZ=ON > "$BUILD/configure.log" 2>&1 ||
  { cat "$BUILD/configure.log" >&2; exit 2; }
nice ninja -C "$BUILD" -j"$JOBS" $(printf 'fuzz_%s ' "${NAMES[@]}")
# FUZZ_BUILD_ONLY=1: build the harnesses and stop (.ci/run builds them while tests run).
if [ -n "${FUZZ_BUILD_ONLY:-}" ]; then exit 0; fi

# Leaks at exit are not findings (the harnesses keep one-off state); everything else is.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for name in "${NAMES[@]}"; do
  work=$(mktemp -d "${TMPDIR:-/tmp}/cltoken-fuzz-$name-XXXXXX")
  artifacts="$BUILD/artifacts/$name"
  mkdir -p "$artifacts"
  echo "== fuzz_$name: ${SECONDS_EACH} s from $(ls "$SOURCE/tests/fuzz/corpus/$name" | wc -l) seeds"
  # New inputs go to a scratch corpus, never into the source tree.
  if "$BUILD/tests/fuzz/fuzz_$name" "$work" "$SOURCE/tests/fuzz/corpus/$name" \
       -max_total_time="$SECONDS_EACH" -runs="$RUNS" -max_len="${MAX_LEN[$name]}" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$artifacts/" > "$BUILD/fuzz_$name.log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+ *DONE" "$BUILD/fuzz_$name.log" | sed 's/^/   /'
    echo "   ok: no finding"
  else
    failed+=("$name")
    tail -60 "$BUILD/fuzz_$name.log"
    echo "   FINDING in fuzz_$name: input in $artifacts/ (log $BUILD/fuzz_$name.log)"
  fi
  rm -rf "$work"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#NAMES[@]} harnesses ran clean"

# Sourced by scripts/test and scripts/demo: installs the Debian 12 packages the build and
# the tests need. As root it runs apt-get; otherwise it prints the exact command to run.

CLTOKEN_PACKAGES=(
  # build
  g++ cmake ninja-build pkg-config dpkg-dev
  clang-format-14         # scripts/format and its ctest check (one formatter, .clang-format)
  libboost1.81-dev libssl-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libtomlplusplus-dev libcli11-dev libsystemd-dev catch2
  libhiredis-dev          # the token store's Redis protocol (docs/store.md)
  # run and test
  openssl systemd curl procps util-linux iproute2
  redis-server redis-tools  # tests/integration/test_store_redis.py runs its own redis-server
  nginx-light             # bench/run.py measures cl-tokend next to nginx (docs/performance.md)
  python3 python3-cryptography python3-jsonschema python3-yaml
  golang-go               # the README's Go client snippet (tests/integration/test_readme.py)
)

cltoken_missing_packages() {
  local missing=() p
  for p in "${CLTOKEN_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # Node.js >= 20 and npm for the js-auth faithfulness test. The machine may carry a
  # NodeSource build (which bundles npm and conflicts with Debian's npm package).
  if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
  if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
  echo "${missing[@]}"
}

cltoken_install_deps() {
  local missing
  missing=$(cltoken_missing_packages "$@")
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "Missing Debian packages. Install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y $missing" >&2
    return 1
  fi
  echo "==> installing: $missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# promtool, for the alert-rule and /metrics tests: taken alone from Debian's prometheus
# .deb by tests/observability/install_promtool.sh (the package would also install a server
# that starts itself).
cltoken_install_promtool() {
  if command -v promtool >/dev/null 2>&1 || [ -x /usr/local/bin/promtool ]; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "promtool is missing. Install it with: sudo tests/observability/install_promtool.sh" >&2
    return 1
  fi
  echo "==> installing promtool"
  "$CLTOKEN_ROOT/tests/observability/install_promtool.sh"
}

# Configures and builds into $1 (default: build) with the given extra CMake arguments.
cltoken_build() {
  local dir=${1:-build}
  shift || true
  cmake -S "$CLTOKEN_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}

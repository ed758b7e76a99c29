# Shared by scripts/demo and scripts/test: install missing Debian packages, then build.
# Sourced, not run.

FLOWGUARD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$FLOWGUARD_ROOT/build}

# Packages the build needs (Debian bookworm names).
BUILD_PACKAGES=(build-essential cmake ninja-build pkg-config libuv1-dev node-llhttp libyaml-cpp-dev libfmt-dev
  doctest-dev nlohmann-json3-dev libcli11-dev libssl-dev libhiredis-dev libsqlite3-dev libpqxx-dev)
# Packages only the tests need (integration tests start a real Redis and a real PostgreSQL;
# scripts/check-compose validates docker-compose.yml with docker-compose, no engine needed;
# the ASan+UBSan run and the fuzz targets are built with clang and libFuzzer, whose runtime
# libraries are only a recommendation of clang's; llvm gives the reports their symbols; curl and
# Python's standard library are the independent HTTP clients of tests/integration/test_oracle).
TEST_PACKAGES=(redis-server postgresql prometheus chromium docker-compose clang libclang-rt-14-dev llvm curl python3)

# Installs whichever of the given packages are missing; skips apt-get entirely when none are.
install_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Configures and builds into $BUILD_DIR: everything, or the targets named in BUILD_TARGETS.
# Extra arguments go to cmake. A new build directory uses Ninja; an existing one keeps the
# generator it was made with.
build_flowguard() {
  local generator=()
  [ -f "$BUILD_DIR/CMakeCache.txt" ] || generator=(-G Ninja)
  cmake -S "$FLOWGUARD_ROOT" -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  local targets=()
  [ -n "${BUILD_TARGETS:-}" ] && targets=(--target $BUILD_TARGETS)
  cmake --build "$BUILD_DIR" -j"$(nproc)" "${targets[@]}"
}

#!/usr/bin/env bash
# Installs what the tests need, builds once (plus once with ASan/UBSan), runs every test
# and the short benchmarks. Exit code 0 only if all pass.
#
#   tests/run-all.sh            # everything CI runs
#   PHOTORIG_SOAK=1 tests/run-all.sh   # also the long soak variants
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
jobs="$(nproc)"

# --cross-arm64: Debian's arm64 cross compiler, qemu-user-static and the :arm64 libraries,
# for the arm64 cross build at the end (one apt transaction with the rest).
bash deploy/install-deps.sh --with-tests --cross-arm64
# Node tools the tests start as real peers (s3rver, Node-RED, MQTT.js, playwright-core),
# pinned by tests/package-lock.json; the tests themselves then need no internet.
npm ci --prefix "$repo/tests" --no-audit --no-fund
# MQTT.js for the web dashboard, which dashboards/web/build.sh copies next to the page.
npm ci --prefix "$repo/dashboards/web" --no-audit --no-fund

run_suite() {  # build dir, extra cmake flags...
  local dir="$1"; shift
  cmake -S "$repo" -B "$dir" -DPHOTORIG_BUILD_TESTS=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  # Each test starts its own broker, simulator and daemons on free ports, so they can run
  # in parallel.
  local label_filter=(-LE soak)
  [ "${PHOTORIG_SOAK:-0}" = 1 ] && label_filter=()
  ctest --test-dir "$dir" -j"$jobs" --output-on-failure --timeout 600 "${label_filter[@]}"
}

echo "=== build and test (RelWithDebInfo)"
# Includes the Debian package tests (label "package", tests/integration/package): they
# package this build's binaries (no third compile), lint, install, run, upgrade and purge
# the package on this machine (as root; skipped otherwise).
run_suite "$repo/build"
echo "=== build and test with AddressSanitizer + UndefinedBehaviorSanitizer"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite "$repo/build-asan" -DPHOTORIG_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug

if [ -x "$repo/tests/bench/run-benchmarks.sh" ]; then
  echo "=== benchmarks (short run; PHOTORIG_BENCH_FULL=1 for the full one)"
  "$repo/tests/bench/run-benchmarks.sh" "$repo/build"
fi

# The Raspberry Pi build: every binary cross-compiled with Debian's arm64 toolchain and run
# under qemu-user-static, then packaged as photorig_<version>_arm64.deb and linted.
echo "=== arm64 cross build, run under qemu, package and lint"
PHOTORIG_JOBS="$jobs" deploy/cross-build-arm64.sh "$repo/build-arm64" rig-agent rig-uploader rigctl
tests/package/arm64_qemu_test.sh "$repo/build-arm64" rig-agent rig-uploader rigctl
arm64_deb="$(PHOTORIG_DEB_BUILD_DIR="$repo/build-arm64" deploy/build-deb.sh "$repo/build-arm64/deb" arm64)"
bash tests/integration/package/lintian_test.sh "$arm64_deb"

#!/usr/bin/env bash
# Cross-builds photorig's binaries for arm64 (Raspberry Pi OS 64-bit / Debian 12 arm64) on
# this Debian 12 amd64 machine, Release, without tests.
#
#   deploy/cross-build-arm64.sh BUILDDIR [TARGET...]   # all targets when none are named
#
# Needs deploy/install-deps.sh --cross-arm64 (run it first; this script doesn't, so that a
# build never changes the machine). PHOTORIG_JOBS sets the parallel jobs (default: nproc).
# Uses ccache when it is installed.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILDDIR [TARGET...]" >&2
  exit 2
fi
build="$1"
shift
if ! command -v aarch64-linux-gnu-g++ >/dev/null 2>&1; then
  echo "cross-build-arm64: no aarch64-linux-gnu-g++; run deploy/install-deps.sh --cross-arm64" >&2
  exit 1
fi

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$repo" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$repo/deploy/toolchain-arm64.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DPHOTORIG_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build "$build" -j"${PHOTORIG_JOBS:-$(nproc)}" "${targets[@]}"

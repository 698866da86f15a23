#!/usr/bin/env bash
# Builds the Debian package: OUTDIR/photorig_<version>-<revision>_<arch>.deb (CPack's DEB
# generator), and prints its path.
#
#   deploy/build-deb.sh OUTDIR [amd64|arm64]
#
# The version is project(VERSION) in CMakeLists.txt; PHOTORIG_DEB_VERSION=X overrides the
# package's version (tests build N and N+1 from one tree). The architecture defaults to this
# machine's. arm64 is a cross build with Debian's toolchain and :arm64 libraries
# (deploy/install-deps.sh --cross-arm64) through deploy/toolchain-arm64.cmake.
# PHOTORIG_DEB_BUILD_DIR=DIR packages an already configured build (CI reuses its test build
# and its arm64 cross build instead of compiling again); otherwise build-deb-<arch>/ in this
# checkout.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h|--help) usage; exit 0 ;; "") usage >&2; exit 2 ;; esac
outdir="$1"
native_arch="$(dpkg --print-architecture)"
arch="${2:-$native_arch}"
case "$arch" in
  amd64|arm64) ;;
  *) echo "build-deb.sh: architecture must be amd64 or arm64, not '$arch'" >&2; exit 2 ;;
esac
for tool in cpack dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || {
    echo "build-deb.sh: $tool is missing (run deploy/install-deps.sh --with-tests)" >&2; exit 1; }
done

configure_args=(-DCMAKE_BUILD_TYPE=Release -DPHOTORIG_BUILD_TESTS=OFF)
build="${PHOTORIG_DEB_BUILD_DIR:-}"
if [ "$arch" != "$native_arch" ]; then
  toolchain="$repo/deploy/toolchain-$arch.cmake"
  [ -f "$toolchain" ] || {
    echo "build-deb.sh: $toolchain is missing: no cross build for $arch in this tree" >&2; exit 1; }
  # A given build dir must be a cross build for this architecture (CI packages the one
  # deploy/cross-build-arm64.sh made), never a native one under the wrong name.
  if [ -n "$build" ] && ! grep -qs "^CMAKE_TOOLCHAIN_FILE:.*=$toolchain\$" "$build/CMakeCache.txt"; then
    echo "build-deb.sh: $build is not configured with $toolchain" >&2; exit 2
  fi
  configure_args+=(-DCMAKE_TOOLCHAIN_FILE="$toolchain")
fi
if [ -n "$build" ]; then
  [ -f "$build/CMakeCache.txt" ] || {
    echo "build-deb.sh: $build is not a configured build directory" >&2; exit 2; }
  build="$(cd "$build" && pwd)"
else
  build="$repo/build-deb-$arch"
  cmake -S "$repo" -B "$build" "${configure_args[@]}" >/dev/null
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cmake --build "$build" -j"$(nproc)" --target rig-agent rig-uploader rigctl >"$work/build.log" 2>&1 || {
  cat "$work/build.log" >&2; echo "build-deb.sh: the build failed" >&2; exit 1; }

mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"
# cpack reads PHOTORIG_DEB_VERSION and PHOTORIG_DEB_ARCH (deploy/debian/cpack-project-config.cmake).
PHOTORIG_DEB_ARCH="$arch" cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work" >"$work/cpack.log" 2>&1 || {
  cat "$work/cpack.log" >&2; echo "build-deb.sh: cpack failed" >&2; exit 1; }
deb="$(find "$work" -maxdepth 1 -name "photorig_*_$arch.deb" | head -n1)"
[ -n "$deb" ] || { cat "$work/cpack.log" >&2; echo "build-deb.sh: cpack wrote no photorig_*_$arch.deb" >&2; exit 1; }
mv -f "$deb" "$outdir/"
echo "$outdir/$(basename "$deb")"

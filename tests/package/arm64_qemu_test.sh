#!/usr/bin/env bash
# Runs photorig's arm64 binaries from a cross build (deploy/cross-build-arm64.sh) under
# qemu-user-static, as a Raspberry Pi would run them: each must be an aarch64 ELF, print its
# version, and (the daemons) accept the example config and refuse a broken one.
#
#   tests/package/arm64_qemu_test.sh BUILDDIR [BINARY...]   # default: rig-agent rig-uploader rigctl
#
# Exit 0 only if every check passes; each failure is printed.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILDDIR [BINARY...]" >&2
  exit 2
fi
build="$(cd "$1" && pwd)"
shift
binaries=("$@")
[ ${#binaries[@]} -eq 0 ] && binaries=(rig-agent rig-uploader rigctl)
qemu=(qemu-aarch64-static -L /usr/aarch64-linux-gnu)
example="$repo/config/photorig.example.yaml"
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# The version CMake built in (project(VERSION) in CMakeLists.txt), from the cross build's cache.
version="$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")"
[ -n "$version" ] || fail "no CMAKE_PROJECT_VERSION in $build/CMakeCache.txt"
if ! grep -q '^CMAKE_CROSSCOMPILING:INTERNAL=TRUE' "$build/CMakeCache.txt" 2>/dev/null &&
  ! grep -q '^CMAKE_TOOLCHAIN_FILE:.*toolchain-arm64.cmake' "$build/CMakeCache.txt"; then
  fail "$build is not a cross build with deploy/toolchain-arm64.cmake"
fi

# Runs a binary under qemu; sets $out (stdout+stderr) and $rc.
run_arm64() {
  out="$("${qemu[@]}" "$@" 2>&1)"
  rc=$?
}
expect() {  # what, expected rc, text the output must contain
  if [ "$rc" -ne "$2" ]; then
    fail "$1: exit $rc, expected $2; output: $out"
  elif [[ "$out" != *"$3"* ]]; then
    fail "$1: output lacks '$3': $out"
  else
    echo "ok: $1: $out"
  fi
}

broken="$(mktemp --suffix=.yaml)"
trap 'rm -f "$broken"' EXIT
# One bad key in an otherwise valid file: the refusal must come from the config parser.
sed 's/^rig_id: rig1 /rig_id: "Bad Id"/' "$example" >"$broken"
grep -q '^rig_id: "Bad Id"' "$broken" || fail "could not write the broken config (example changed?)"

for name in "${binaries[@]}"; do
  bin="$build/agent/apps/$name"
  if [ ! -x "$bin" ]; then
    fail "$name: $bin not built"
    continue
  fi
  kind="$(file -b "$bin")"
  if [[ "$kind" == "ELF 64-bit LSB"*"ARM aarch64"* ]]; then
    echo "ok: $name is $(cut -d, -f1-2 <<<"$kind"), $(stat -c %s "$bin") bytes"
  else
    fail "$name: not an aarch64 ELF: $kind"
  fi
  run_arm64 "$bin" --version
  expect "$name --version" 0 "$name $version"
  [ "$out" = "$name $version" ] || fail "$name --version printed more than '$name $version': $out"
  [ "$name" = rigctl ] && continue
  run_arm64 "$bin" --check-config --config "$example"
  expect "$name --check-config (example)" 0 "configuration $example is valid"
  run_arm64 "$bin" --check-config --config "$broken"
  expect "$name --check-config (broken rig_id)" 2 "invalid configuration: $broken: rig_id: must match"
done

if [ "$failures" -ne 0 ]; then
  echo "arm64_qemu_test: $failures check(s) failed"
  exit 1
fi
echo "arm64_qemu_test: all checks passed (${binaries[*]})"

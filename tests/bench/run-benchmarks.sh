#!/usr/bin/env bash
# Runs the benchmarks from a build dir. Short by default (CI); PHOTORIG_BENCH_FULL=1 for
# the full sizes quoted in closing notes. A missed goal is reported, and fails the run
# only with PHOTORIG_BENCH_STRICT=1 (timings on a loaded CI machine vary).
set -uo pipefail
build="${1:?usage: run-benchmarks.sh BUILD_DIR}"
mode=--quick
[ "${PHOTORIG_BENCH_FULL:-0}" = 1 ] && mode=--full
status=0
for bench in "$build"/tests/bench/*/bench_*; do
  [ -x "$bench" ] || continue
  echo "--- $(basename "$bench") $mode"
  "$bench" "$mode"
  rc=$?
  if [ $rc -eq 3 ] && [ "${PHOTORIG_BENCH_STRICT:-0}" != 1 ]; then
    echo "(goal missed; not failing the run: set PHOTORIG_BENCH_STRICT=1 to make it fatal)"
  elif [ $rc -ne 0 ]; then
    status=1
  fi
done
exit $status

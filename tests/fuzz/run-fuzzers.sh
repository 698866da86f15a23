#!/usr/bin/env bash
# Runs every libFuzzer target of a PHOTORIG_FUZZ=ON build for PHOTORIG_FUZZ_S seconds each
# (default 30), PHOTORIG_FUZZ_JOBS at a time (default: the number of cores; each target is one
# process on one core), and fails if any target crashed, leaked, timed out or ran out of
# memory. Prints each target's executions and exec/s (libFuzzer's final "#N DONE" line).
#
#   cmake -S . -B build-fuzz -DPHOTORIG_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang
#   cmake --build build-fuzz -j"$(nproc)"
#   tests/fuzz/run-fuzzers.sh build-fuzz                  # CI: 30 s per target
#   PHOTORIG_FUZZ_S=600 tests/fuzz/run-fuzzers.sh build-fuzz
#   PHOTORIG_FUZZ_TARGETS="request s3" tests/fuzz/run-fuzzers.sh build-fuzz
#
# Each target starts from a fresh copy of its seed corpus and committed regressions (the
# repository is never modified). A crash input lands in $PHOTORIG_FUZZ_ARTIFACTS (default
# BUILD_DIR/fuzz-artifacts) as <target>-crash-<sha1>: commit it under
# tests/fuzz/regressions/<target>/ with the fix, and ctest Fuzz.<target>.Replay keeps it fixed.
set -uo pipefail
build="$(cd "${1:?usage: run-fuzzers.sh BUILD_DIR}" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
secs="${PHOTORIG_FUZZ_S:-30}"
jobs="${PHOTORIG_FUZZ_JOBS:-$(nproc)}"
artifacts="${PHOTORIG_FUZZ_ARTIFACTS:-$build/fuzz-artifacts}"
mkdir -p "$artifacts"
# tmpfs when there is one: the journal target's SQLite commits fsync.
tmp_base="${TMPDIR:-/tmp}"
[ -w /dev/shm ] && tmp_base=/dev/shm
work="$(mktemp -d "$tmp_base/photorig-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
export PHOTORIG_FUZZ_TMP="$work"  # harnesses' scratch files (fuzz_journal's database)

targets=()
if [ -n "${PHOTORIG_FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$PHOTORIG_FUZZ_TARGETS"
else
  for bin in "$build"/tests/fuzz/fuzz_*; do
    [ -x "$bin" ] && targets+=("$(basename "$bin" | sed 's/^fuzz_//')")
  done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "run-fuzzers: no fuzz_* binaries under $build/tests/fuzz (configure with -DPHOTORIG_FUZZ=ON)" >&2
  exit 2
fi

run_one() {  # target name; writes $work/<name>.log and $work/<name>.rc
  local name="$1" corpus="$work/$1/corpus"
  mkdir -p "$corpus"
  for src in "$here/corpus/$name" "$here/regressions/$name"; do
    [ -d "$src" ] && cp "$src"/* "$corpus"/ 2>/dev/null
  done
  "$build/tests/fuzz/fuzz_$name" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$name-" "$corpus" >"$work/$name.log" 2>&1
  echo $? >"$work/$name.rc"
}

echo "run-fuzzers: ${#targets[@]} targets, ${secs} s each, ${jobs} at a time"
running=0
for name in "${targets[@]}"; do
  if [ ! -x "$build/tests/fuzz/fuzz_$name" ]; then
    echo "run-fuzzers: no fuzz_$name in $build/tests/fuzz" >&2
    exit 2
  fi
  run_one "$name" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

failed=0
printf '%-12s %12s %10s %8s  %s\n' target executions exec/s corpus result
for name in "${targets[@]}"; do
  log="$work/$name.log"
  rc="$(cat "$work/$name.rc" 2>/dev/null || echo 99)"
  # libFuzzer's last status line: "#123456	DONE   cov: 900 ft: 2000 corp: 120/9Kb lim: 4096 exec/s: 4115 rss: 80Mb"
  done_line="$(grep -a -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)"
  execs="$(sed -n -E 's/^#([0-9]+).*/\1/p' <<<"$done_line")"
  rate="$(sed -n -E 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$done_line")"
  corp="$(sed -n -E 's/.*corp: ([0-9]+)\/.*/\1/p' <<<"$done_line")"
  if [ "$rc" = 0 ] && [ -n "$done_line" ]; then
    printf '%-12s %12s %10s %8s  %s\n' "$name" "$execs" "$rate" "$corp" ok
  else
    failed=1
    execs="$(grep -a -E '^stat::number_of_executed_units:' "$log" | awk '{print $2}')"
    printf '%-12s %12s %10s %8s  %s\n' "$name" "${execs:-?}" "-" "-" "FAILED (exit $rc)"
    echo "----- fuzz_$name (last 40 lines of its log)"
    tail -40 "$log"
    ls "$artifacts/$name-"* 2>/dev/null | sed 's/^/  crash input: /'
    echo "-----"
  fi
done
exit "$failed"

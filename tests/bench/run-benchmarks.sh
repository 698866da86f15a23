#!/usr/bin/env bash
# Runs the benchmarks from a build dir. Short by default (CI); PHOTORIG_BENCH_FULL=1 for
# the full sizes quoted in closing notes. A missed goal is reported, and fails the run
# only with PHOTORIG_BENCH_STRICT=1 (timings on a loaded CI machine vary).
#
# Users bring their own broker and cameras, so the camera-facing benchmarks also run against
# the second, independently written camera simulator (tests/ptpip-sim2: PHOTORIG_TEST_SIM=sim2)
# and, for the pipeline, a broker without photorig's tuning (run-broker.sh --stock-tuning:
# PHOTORIG_BENCH_BROKER=stock); bench_latency compares both brokers itself. The short run
# covers that matrix for bench_latency and for bench_pipeline's camera part (cli: agent vs
# CLI vs the bare library, with the per-photo stages) and runs the rest once; the full run
# covers it for every benchmark.
set -uo pipefail
build="${1:?usage: run-benchmarks.sh BUILD_DIR}"
mode=--quick
[ "${PHOTORIG_BENCH_FULL:-0}" = 1 ] && mode=--full
status=0

run_one() {  # bench, simulator, broker[, the one part of it to run]
  local bench="$1" sim="$2" broker="$3" part="${4:-}"
  echo "--- $(basename "$bench") $mode $part (camera simulator: $sim, broker: $broker)"
  PHOTORIG_TEST_SIM="$sim" PHOTORIG_BENCH_BROKER="$broker" "$bench" "$mode" $part
  local rc=$?
  if [ $rc -eq 3 ] && [ "${PHOTORIG_BENCH_STRICT:-0}" != 1 ]; then
    echo "(goal missed; not failing the run: set PHOTORIG_BENCH_STRICT=1 to make it fatal)"
  elif [ $rc -ne 0 ]; then
    status=1
  fi
}

for bench in "$build"/tests/bench/*/bench_*; do
  [ -x "$bench" ] || continue
  case "$(basename "$bench")" in
    bench_pipeline)
      setups="ours:photorig sim2:photorig:cli ours:stock:cli sim2:stock:cli"
      [ "$mode" = --full ] && setups="ours:photorig sim2:photorig ours:stock sim2:stock" ;;
    bench_latency) setups="ours:both sim2:both" ;;
    # 20 rigs' worth of brokers, agents, uploaders and simulators (5 with --quick): once, on
    # our simulator and photorig's broker tuning (the camera and broker matrix is the other
    # benchmarks' question; this one measures the bridges and the central broker).
    bench_fleet) setups="ours:photorig" ;;
    *) setups="ours:photorig"
       [ "$mode" = --full ] && setups="ours:photorig sim2:photorig ours:stock sim2:stock" ;;
  esac
  for setup in $setups; do
    IFS=: read -r sim broker part <<<"$setup"
    run_one "$bench" "$sim" "$broker" "$part"
  done
done
exit $status

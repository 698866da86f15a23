#!/usr/bin/env bash
# Manual smoke test of ptpip-sim through the real libgphoto2 (needs libgphoto2-dev, a C
# compiler and the gphoto2 CLI; not part of the CMake build or of CI).
#   tests/ptpip-sim/smoke/run_smoke.sh /path/to/ptpip-sim [CYCLES]
# Runs: gp_smoke CYCLES capture/download/delete cycles, --fail-busy (-110 expected),
# --no-event (no FILE_ADDED expected), and gphoto2 --summary / --capture-image-and-download.
set -euo pipefail
sim=${1:?path to ptpip-sim}
cycles=${2:-100}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
export HOME="$work/home"
mkdir -p "$HOME" "$work/out"
cc -O2 -Wall -Wextra -o "$work/gp_smoke" "$here/gp_smoke.c" $(pkg-config --cflags --libs libgphoto2)

start() {  # start the simulator with extra flags; sets $pid and $port
    "$sim" --port 0 "$@" >"$work/sim.out" 2>"$work/sim.err" &
    pid=$!
    for _ in $(seq 100); do grep -q LISTENING "$work/sim.out" && break; sleep 0.05; done
    port=$(awk '/LISTENING/ {print $2}' "$work/sim.out")
    [ -n "$port" ] || { cat "$work/sim.err"; exit 1; }
}
stop() { kill "$pid"; wait "$pid"; }

start --event-log "$work/events.jsonl"
"$work/gp_smoke" "ptpip:127.0.0.1:$port:$port" "$cycles" | tail -n 3
gphoto2 --port "ptpip:127.0.0.1:$port:$port" --camera "PTP/IP Camera" --summary | head -n 5
(cd "$work/out" && gphoto2 --port "ptpip:127.0.0.1:$port:$port" --camera "PTP/IP Camera" \
    --capture-image-and-download --filename '%f.%C' >/dev/null)
ls -l "$work/out"
stop
start --fail-busy 1
"$work/gp_smoke" "ptpip:127.0.0.1:$port:$port" --expect-busy
stop
start --no-event 1
"$work/gp_smoke" "ptpip:127.0.0.1:$port:$port" --expect-noevent
stop
echo "smoke OK"

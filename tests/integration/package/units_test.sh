#!/usr/bin/env bash
# Every systemd unit in the package scores 3.0 or lower in `systemd-analyze security
# --offline=true` (lower is safer). `systemd-analyze verify` needs the installed
# executables: install_purge_test.sh runs it after dpkg -i.
set -euo pipefail
deb="${PHOTORIG_BINARY_DIR:?}/deb/photorig_${PHOTORIG_VERSION:?}_$(dpkg --print-architecture).deb"
[ -f "$deb" ] || { echo "FAIL: $deb is missing" >&2; exit 1; }
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
dpkg-deb -x "$deb" "$tree"
units=("$tree"/lib/systemd/system/*.service)
[ ${#units[@]} = 3 ] || { echo "FAIL: expected 3 units, found ${units[*]}" >&2; exit 1; }
status=0
for unit in "${units[@]}"; do
  out="$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1)" || true
  score="$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")"
  [ -n "$score" ] || { echo "$out" >&2; echo "FAIL: no score for $unit" >&2; status=1; continue; }
  echo "FIGURE systemd-analyze security $(basename "$unit"): $score"
  if ! python3 -c "import sys; sys.exit(0 if float('$score') <= 3.0 else 1)"; then
    echo "$out" | grep '✗' >&2
    echo "FAIL: $(basename "$unit") scores $score > 3.0" >&2
    status=1
  fi
done
# The agent's timed triggers run SCHED_FIFO for a moment (capture.trigger_priority): its unit
# must let the unprivileged service ask (LimitRTPRIO) and must not forbid it (RestrictRealtime).
agent_unit="$tree/lib/systemd/system/photorig-agent.service"
grep -qx 'LimitRTPRIO=10' "$agent_unit" || { echo "FAIL: agent unit lacks LimitRTPRIO=10" >&2; status=1; }
if grep -q '^RestrictRealtime=yes' "$agent_unit"; then
  echo "FAIL: agent unit sets RestrictRealtime=yes (timed triggers could not run SCHED_FIFO)" >&2
  status=1
fi
exit $status

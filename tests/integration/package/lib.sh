# Shared by the package tests (sourced). Runs the *installed* package's pieces the way its
# systemd units would (systemd is not PID 1 here): the broker as user mosquitto with the
# config the postinst generated, the daemons as user photorig with /etc/photorig/rig.yaml
# and the units' environment. Only the ports differ (free loopback ports, set through the
# daemons' documented environment overrides), and the camera is the PTP/IP simulator.
set -euo pipefail

SKIP=77
BUILD_DIR="${PHOTORIG_BINARY_DIR:?}"
DEB_DIR="$BUILD_DIR/deb"
SIM="$BUILD_DIR/tests/ptpip-sim/ptpip-sim"
UPLOADS=/var/lib/photorig/uploads
SECRETS=/etc/photorig/secrets

fail() { echo "FAIL: $*" >&2; exit 1; }
require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: this test installs a Debian package and needs root (CI runs as root)"
    exit $SKIP
  fi
}
deb_for() {  # version -> path of the package build-deb.sh wrote for it
  local deb="$DEB_DIR/photorig_$1_$(dpkg --print-architecture).deb"
  [ -f "$deb" ] || fail "$deb is missing (the Package.Build test writes it)"
  echo "$deb"
}
# Runs a command as a user with that user's groups, the way systemd's User= does: setpriv
# execs it in place, so the PID the test holds is the daemon's (SIGTERM reaches it).
as_user() {  # user -> the command prefix, as words
  echo setpriv --reuid="$1" --regid="$1" --init-groups --reset-env --
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
purge_package() { dpkg --purge photorig >/dev/null 2>&1 || true; }

PIDS=()
WORK="$(mktemp -d)"
chmod 755 "$WORK"
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  purge_package
  if [ "${PHOTORIG_KEEP_TEST_DIR:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

start_broker() {  # the packaged broker config, on a free port
  MQTT_PORT="$(free_port)"
  local conf=/var/lib/photorig-broker/test-mosquitto.conf
  sed "s/^listener 1883 127.0.0.1\$/listener $MQTT_PORT 127.0.0.1/" \
    /var/lib/photorig-broker/mosquitto.conf > "$conf"
  grep -q "^listener $MQTT_PORT " "$conf" || fail "generated mosquitto.conf has no 'listener 1883 127.0.0.1'"
  chown mosquitto: "$conf"
  # shellcheck disable=SC2046
  $(as_user mosquitto) /usr/sbin/mosquitto -c "$conf" > "$WORK/broker.log" 2>&1 &
  BROKER_PID=$!
  PIDS+=("$BROKER_PID")
  local i
  for i in $(seq 100); do
    mosquitto_pub -p "$MQTT_PORT" -u photorig-dashboard -P "$(head -n1 $SECRETS/photorig-dashboard.password)" \
      -t photorig/_probe -n 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$WORK/broker.log" >&2
  fail "the packaged broker did not accept the dashboard's generated password"
}

start_camera() {  # args: extra ptpip-sim flags
  "$SIM" --port 0 "$@" > "$WORK/sim.log" 2>&1 &
  PIDS+=($!)
  local i
  for i in $(seq 100); do
    # The simulator's shell may not have created its log yet (set -e would end the test).
    SIM_PORT="$(sed -n 's/^LISTENING \([0-9]*\)$/\1/p' "$WORK/sim.log" 2>/dev/null | head -n1 || true)"
    [ -n "$SIM_PORT" ] && return 0
    sleep 0.05
  done
  fail "camera simulator did not start"
}

# Environment of the daemons: what the units set, plus the test's ports and camera.
daemon_env() {  # user (photorig-agent | photorig-uploader)
  echo HOME=/var/lib/photorig PHOTORIG_MQTT_USERNAME="$1" \
    PHOTORIG_MQTT_PASSWORD_FILE="$SECRETS/$1.password" PHOTORIG_MQTT_PORT="$MQTT_PORT" \
    PHOTORIG_CAMERA_PORT="ptpip:127.0.0.1:$SIM_PORT:$SIM_PORT" \
    ${EXTRA_ENV:-}
}
start_daemon() {  # binary user: as user photorig with the packaged config, like the unit
  local bin="$1" mqtt_user="$2"
  # shellcheck disable=SC2046
  $(as_user photorig) env $(daemon_env "$mqtt_user") PHOTORIG_CAMERA_MODEL="PTP/IP Camera" \
    "/usr/bin/$bin" --config /etc/photorig/rig.yaml >> "$WORK/$bin.log" 2>&1 &
  eval "${bin//-/_}_PID=$!"
  PIDS+=($!)
}
start_daemons() {
  start_daemon rig-uploader photorig-uploader
  start_daemon rig-agent photorig-agent
  wait_retained photorig/rig1/availability online
  wait_retained photorig/rig1/uploader/availability online
}
# What systemctl restart does to a unit: SIGTERM, wait for the exit, start again.
restart_daemons() {
  kill -TERM "$rig_agent_PID" "$rig_uploader_PID"
  wait "$rig_agent_PID" || fail "rig-agent exited $? on SIGTERM"
  wait "$rig_uploader_PID" || fail "rig-uploader exited $? on SIGTERM"
  start_daemons
}

dashboard() { echo -p "$MQTT_PORT" -u photorig-dashboard -P "$(head -n1 $SECRETS/photorig-dashboard.password)"; }
wait_retained() {  # topic payload: polls the retained value (a restart first leaves the
  local got="" deadline=$((SECONDS + 30))   # last "offline" there)
  while [ $SECONDS -lt $deadline ]; do
    # shellcheck disable=SC2046
    got="$(mosquitto_sub $(dashboard) -t "$1" -C 1 -W 2 2>/dev/null || true)"
    [ "$got" = "$2" ] && return 0
    sleep 0.1
  done
  tail -n 30 "$WORK"/*.log >&2
  fail "$1 is '$got', not '$2'"
}
record_events() {  # everything the rig says, one "topic payload" line each
  # shellcheck disable=SC2046
  mosquitto_sub $(dashboard) -v -t 'photorig/rig1/capture' -t 'photorig/rig1/upload/events' \
    -t 'photorig/rig1/response/#' > "$WORK/events.log" 2>/dev/null &
  PIDS+=($!)
  sleep 0.3
}
capture() {  # count
  # shellcheck disable=SC2046
  mosquitto_pub $(dashboard) -q 1 -t photorig/rig1/request/capture -m "{\"count\":$1}"
}
spooled_count() { find /var/spool/photorig -type f -not -path '*/.*' 2>/dev/null | wc -l; }
uploaded_count() { find "$UPLOADS" -type f 2>/dev/null | wc -l; }
done_count() {  # photos whose upload the uploader reported done
  grep '^photorig/rig1/upload/events ' "$WORK/events.log" 2>/dev/null | grep '"type":"done"' |
    grep -o '"capture_id":"[^"]*"' | sort -u | wc -l
}
wait_uploaded() {  # count timeout_s
  local deadline=$((SECONDS + $2))
  while [ "$(done_count)" -lt "$1" ]; do
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$WORK"/*.log >&2; fail "only $(done_count) of $1 photos uploaded in $2 s"; }
    sleep 0.1
  done
}
# Every captured photo is in the upload target exactly once with its captured bytes, and
# nothing else is: the capture events name each photo and its sha256.
check_each_photo_once() {  # expected count
  python3 - "$WORK/events.log" "$UPLOADS" "$1" <<'PY'
import hashlib, json, os, sys
log, uploads, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
captures, done = {}, {}
for line in open(log):
    topic, _, payload = line.partition(" ")
    if topic == "photorig/rig1/capture":
        c = json.loads(payload)
        captures[c["capture_id"]] = c["file"]
    elif topic == "photorig/rig1/upload/events":
        e = json.loads(payload)
        if e["type"] == "done":
            done[e["capture_id"]] = done.get(e["capture_id"], 0) + 1
files = [os.path.join(d, f) for d, _, fs in os.walk(uploads) for f in fs]
by_name = {}
for path in files:
    by_name.setdefault(os.path.basename(path), []).append(path)
errors = []
if len(captures) != expected:
    errors.append(f"{len(captures)} capture events, expected {expected}")
if len(files) != len(captures):
    errors.append(f"{len(files)} files in the target for {len(captures)} photos: {sorted(files)}")
for cid, f in captures.items():
    name = os.path.basename(f["path"])  # the remote name is the spool file's name
    paths = by_name.get(name, [])
    if len(paths) != 1:
        errors.append(f"{name} is in the target {len(paths)} times")
        continue
    digest = hashlib.sha256(open(paths[0], "rb").read()).hexdigest()
    if digest != f["sha256"]:
        errors.append(f"{name}: sha256 {digest} != captured {f['sha256']}")
    if done.get(cid, 0) < 1:
        errors.append(f"{name}: no upload done event")
print(f"{len(captures)} photos, {len(files)} files in the target, done events {sum(done.values())}")
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
PY
}

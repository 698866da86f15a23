#!/usr/bin/env bash
# Sets up this Debian 12 machine and runs photorig: broker, rig-uploader and rig-agent.
#
#   deploy/run.sh [--config FILE] [--mqtt-port N] [--ws-port N] [--web-port N] [--state-dir DIR]
#
# Without --config it writes a working default: the camera on USB if one is detected,
# otherwise the built-in PTP/IP camera simulator, and the local-directory upload target
# under the state dir (default: .run/ in this checkout). The broker also listens for MQTT
# over websockets on --ws-port (default 9001), and the web dashboard (dashboards/web) is
# served on --web-port (default 8080; 0 = don't). Ctrl-C stops everything.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config=""
mqtt_port="${PHOTORIG_MQTT_PORT:-1883}"
ws_port="${PHOTORIG_WS_PORT:-9001}"
web_port="${PHOTORIG_WEB_PORT:-8080}"
state="$repo/.run"
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$(realpath "$2")"; shift 2 ;;
    --mqtt-port) mqtt_port="$2"; shift 2 ;;
    --ws-port) ws_port="$2"; shift 2 ;;
    --web-port) web_port="$2"; shift 2 ;;
    --state-dir) state="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

bash "$repo/deploy/install-deps.sh"

build="$repo/build-run"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPHOTORIG_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target rig-agent rig-uploader rigctl ptpip-sim

mkdir -p "$state"
state="$(cd "$state" && pwd)"
mkdir -p "$state/logs" "$state/home"
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "photorig: stopping"
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if (exec 3<>"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null; then
  echo "run.sh: port $mqtt_port is already in use (another broker?). Stop it or pass --mqtt-port N." >&2
  exit 1
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$ws_port") 2>/dev/null; then
  echo "run.sh: websockets port $ws_port is already in use. Stop what holds it or pass --ws-port N." >&2
  exit 1
fi
if [ "$web_port" != 0 ] && (exec 3<>"/dev/tcp/127.0.0.1/$web_port") 2>/dev/null; then
  echo "run.sh: web port $web_port is already in use. Pass --web-port N (0 = no web dashboard)." >&2
  exit 1
fi

# The rig whose uploads the broker's uploader user may handle: the config's rig_id.
rig_id=rig1
if [ -n "$config" ]; then
  rig_id="$(sed -n 's/^rig_id: *"\{0,1\}\([a-z0-9_-]*\)"\{0,1\} *\(#.*\)\{0,1\}$/\1/p' "$config" | head -n1)"
  rig_id="${rig_id:-rig1}"
fi
"$repo/broker/run-broker.sh" --port "$mqtt_port" --ws-port "$ws_port" --data-dir "$state/broker" \
  --rig-id "$rig_id" > "$state/logs/broker.log" 2>&1 &
pids+=($!)
secrets="$state/broker/secrets"
# mosquitto_pub/_sub read default options from $XDG_CONFIG_HOME/mosquitto_pub|_sub: the
# dashboard user's password goes there (0600), never on a command line where ps shows it.
cli_conf="$state/mqtt-cli"
write_cli_conf() {
  mkdir -p "$cli_conf"
  chmod 700 "$cli_conf"
  for tool in mosquitto_pub mosquitto_sub; do
    (umask 077; printf -- '-p %s\n-u photorig-dashboard\n-P %s\n' "$mqtt_port" \
      "$(head -n1 "$secrets/photorig-dashboard.password")" > "$cli_conf/$tool")
  done
}
for _ in $(seq 100); do
  if [ -s "$secrets/photorig-dashboard.password" ] && write_cli_conf &&
     XDG_CONFIG_HOME="$cli_conf" mosquitto_pub -t photorig/_probe -n 2>/dev/null; then
    break
  fi
  sleep 0.1
done

if [ -z "$config" ]; then
  camera_port=auto
  camera_model=""
  if gphoto2 --auto-detect 2>/dev/null | tail -n +3 | grep -q 'usb:'; then
    echo "photorig: using the USB camera(s) detected by libgphoto2"
  else
    echo "photorig: no camera detected; starting the PTP/IP camera simulator"
    "$build/tests/ptpip-sim/ptpip-sim" --port 0 --capture-delay-ms 300 --image-size 4000000 \
      > "$state/logs/camera-sim.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
      sim_port="$(sed -n 's/^LISTENING \([0-9]*\)$/\1/p' "$state/logs/camera-sim.log" | head -n1)"
      [ -n "$sim_port" ] && break
      sleep 0.05
    done
    [ -n "${sim_port:-}" ] || { echo "run.sh: camera simulator did not start" >&2; exit 1; }
    camera_port="ptpip:127.0.0.1:$sim_port:$sim_port"
    camera_model="PTP/IP Camera"
  fi
  config="$state/photorig.yaml"
  cat > "$config" <<YAML
# Written by deploy/run.sh; see config/photorig.example.yaml for every key.
rig_id: rig1
topic_prefix: photorig
mqtt:
  host: 127.0.0.1
  port: $mqtt_port
camera:
  port: "$camera_port"
  model: "$camera_model"
spool:
  dir: $state/spool
  min_free_bytes: 104857600
upload:
  target: local
  journal: $state/uploader.sqlite
  local:
    dir: $state/uploads
YAML
fi

PHOTORIG_MQTT_USERNAME=photorig-uploader PHOTORIG_MQTT_PASSWORD_FILE="$secrets/photorig-uploader.password" \
  "$build/agent/apps/rig-uploader" --config "$config" > "$state/logs/uploader.log" 2>&1 &
pids+=($!)
HOME="$state/home" PHOTORIG_MQTT_USERNAME=photorig-agent PHOTORIG_MQTT_PASSWORD_FILE="$secrets/photorig-agent.password" \
  "$build/agent/apps/rig-agent" --config "$config" > "$state/logs/agent.log" 2>&1 &
pids+=($!)

# The web dashboard is static files plus MQTT.js, which build.sh fetches with npm on first use.
web_line="Web dashboard: not served (--web-port 0)"
if [ "$web_port" != 0 ]; then
  if "$repo/dashboards/web/build.sh" "$state/web" > "$state/logs/web-build.log" 2>&1; then
    python3 -m http.server --bind 127.0.0.1 --directory "$state/web" "$web_port" > "$state/logs/web.log" 2>&1 &
    pids+=($!)
    web_line="Web dashboard: http://127.0.0.1:$web_port/?url=ws://127.0.0.1:$ws_port (user photorig-dashboard)"
  else
    web_line="Web dashboard: not built (it needs npm once; see $state/logs/web-build.log)"
  fi
fi

sleep 1
cat <<EOT

photorig is running (broker on 127.0.0.1:$mqtt_port, MQTT over websockets on
ws://127.0.0.1:$ws_port for browsers; config $config).
$web_line
Logs: $state/logs/   Photos land in: $(sed -n 's/^ *dir: \(.*uploads\)$/\1/p' "$config" | head -n1)

Try it from another terminal (port, user and password come from $cli_conf):
  export XDG_CONFIG_HOME=$cli_conf
  mosquitto_sub -v -t 'photorig/#' &
  mosquitto_pub -t photorig/$rig_id/request/capture -m '{"count":3}'
or with rigctl:
  $build/agent/apps/rigctl --port $mqtt_port --username photorig-dashboard \\
      --password-file $secrets/photorig-dashboard.password capture $rig_id --count 3

Ctrl-C stops everything.
EOT
tail -n 0 -F "$state/logs/agent.log" "$state/logs/uploader.log" &
pids+=($!)
wait -n "${pids[@]:0:${#pids[@]}-1}" || true
echo "photorig: a process exited; see $state/logs/" >&2

#!/usr/bin/env bash
# Starts mosquitto in the foreground with photorig's configuration.
#
#   broker/run-broker.sh --port 1883 --data-dir /var/lib/photorig/broker \
#       [--bind 127.0.0.1] [--ws-port 9001] [--prefix photorig] [--rig-id rig1] [--stock-tuning]
#       [--secrets-dir DIR] [--setup-only]
#       [--tls-port 8883 --ca ca.pem --cert server.pem --key server.key]
#       [--bridge-to HOST:PORT --bridge-ca ca.crt --bridge-cert rig1.crt --bridge-key rig1.key]
#   broker/run-broker.sh --central --port 1883 --data-dir DIR --tls-port 8883 \
#       --ca ca.crt --cert central.crt --key central.key [--ws-port 9001] [--bind ADDR]
#
# --rig-id (default rig1) is the rig whose jobs and upload events photorig-uploader may
# read and write: that user gets no other rig's topics.
# --tls-port adds an MQTT-over-TLS listener with that certificate chain (clients verify it
# against the CA). Every listener (TCP, websockets, TLS) asks for a user and password
# (but --central's TLS listener, which asks for a client certificate instead).
# --stock-tuning leaves out photorig's socket and save tuning (set_tcp_nodelay, saving on
# every change), as Debian's stock config and Home Assistant's add-on do: for measuring
# how photorig fares on a broker that is not its own, never for a rig.
# On first start it creates one password per user (photorig-agent, photorig-uploader,
# photorig-dashboard) in <data-dir>/secrets/<user>.password (or --secrets-dir DIR), mode
# 0600: point mqtt.password_file at the right one. Existing passwords are kept.
# --setup-only writes the files and exits (the Debian package's postinst does this).
# --bridge-to (fleet, issue 14) bridges this rig's broker to a central one over TLS with the
# rig's client certificate (deploy/fleet-certs.sh): out the rig's topics but upload/jobs,
# in its requests, its groups' requests, scan/ready and homeassistant/status.
# --central runs the fleet's central broker instead: rigs log in on the TLS port with their
# certificates (CN = rig id = user name; ACL broker/acl-central.in), dashboards with the
# photorig-dashboard password on --port (and --ws-port). It has no agent/uploader users.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port=1883
bind=127.0.0.1
data_dir=""
ws_port=""
prefix=photorig
rig_id=rig1
stock_tuning=0
secrets_dir=""
setup_only=0
tls_port=""
tls_ca=""
tls_cert=""
tls_key=""
central=0
bridge_to=""
bridge_ca=""
bridge_cert=""
bridge_key=""

usage() { awk 'NR > 1 { if (!/^#/) exit; print }' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    --bind) bind="$2"; shift 2 ;;
    --data-dir) data_dir="$2"; shift 2 ;;
    --ws-port) ws_port="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    --rig-id) rig_id="$2"; shift 2 ;;
    --stock-tuning) stock_tuning=1; shift ;;
    --secrets-dir) secrets_dir="$2"; shift 2 ;;
    --setup-only) setup_only=1; shift ;;
    --tls-port) tls_port="$2"; shift 2 ;;
    --ca) tls_ca="$2"; shift 2 ;;
    --cert) tls_cert="$2"; shift 2 ;;
    --key) tls_key="$2"; shift 2 ;;
    --central) central=1; shift ;;
    --bridge-to) bridge_to="$2"; shift 2 ;;
    --bridge-ca) bridge_ca="$2"; shift 2 ;;
    --bridge-cert) bridge_cert="$2"; shift 2 ;;
    --bridge-key) bridge_key="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run-broker.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[ -n "$data_dir" ] || { echo "run-broker.sh: --data-dir is required" >&2; exit 2; }
case "$port" in ''|*[!0-9]*) echo "run-broker.sh: --port must be a number" >&2; exit 2 ;; esac
if [ -n "$tls_port" ]; then
  case "$tls_port" in *[!0-9]*) echo "run-broker.sh: --tls-port must be a number" >&2; exit 2 ;; esac
  for f in "$tls_ca" "$tls_cert" "$tls_key"; do
    [ -n "$f" ] && [ -r "$f" ] || { echo "run-broker.sh: --tls-port needs readable --ca, --cert and --key files" >&2; exit 2; }
  done
fi
# The rig id goes into the ACL as one topic level: the same rule as the config's rig_id.
case "$rig_id" in ''|*[!a-z0-9_-]*) echo "run-broker.sh: --rig-id must match [a-z0-9_-]+" >&2; exit 2 ;; esac
if [ "$central" = 1 ]; then
  [ -n "$tls_port" ] || { echo "run-broker.sh: --central needs --tls-port, --ca, --cert and --key" >&2; exit 2; }
  [ -z "$bridge_to" ] || { echo "run-broker.sh: --central and --bridge-to exclude each other" >&2; exit 2; }
fi
if [ -n "$bridge_to" ]; then
  # HOST:PORT; an IPv6 address in brackets ([::1]:8883) as mosquitto's `address` takes it.
  [[ "$bridge_to" =~ ^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):[0-9]{1,5}$ ]] ||
    { echo "run-broker.sh: --bridge-to must be HOST:PORT, got '$bridge_to'" >&2; exit 2; }
  for f in "$bridge_ca" "$bridge_cert" "$bridge_key"; do
    [ -n "$f" ] && [ -r "$f" ] || { echo "run-broker.sh: --bridge-to needs readable --bridge-ca, --bridge-cert and --bridge-key files" >&2; exit 2; }
  done
fi
command -v mosquitto >/dev/null || { echo "run-broker.sh: mosquitto is not installed (run deploy/install-deps.sh)" >&2; exit 1; }

[ -n "$secrets_dir" ] || secrets_dir="$data_dir/secrets"
mkdir -p "$data_dir" "$secrets_dir"
data_dir="$(cd "$data_dir" && pwd)"
chmod 700 "$secrets_dir"

passwd_file="$data_dir/passwd"
touch "$passwd_file"
chmod 600 "$passwd_file"
# The central broker's only password user is the dashboards' one: rigs log in with their
# certificates, and no agent or uploader runs against it.
users="photorig-agent photorig-uploader photorig-dashboard"
[ "$central" = 1 ] && users="photorig-dashboard"
for user in $users; do
  secret="$secrets_dir/$user.password"
  if [ ! -s "$secret" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$secret"; echo >> "$secret")
  fi
  chmod 600 "$secret"
  if ! grep -q "^$user:" "$passwd_file"; then
    mosquitto_passwd -b "$passwd_file" "$user" "$(head -n1 "$secret")"
  fi
done

acl_template="$here/acl.in"
[ "$central" = 1 ] && acl_template="$here/acl-central.in"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@RIG@|$rig_id|g" "$acl_template" > "$data_dir/acl"
ws=""
if [ -n "$ws_port" ]; then
  ws="listener $ws_port $bind
protocol websockets
socket_domain ipv4"
fi
# TLS files are copied next to the config (key 0600): run as root, mosquitto reads them as
# user mosquitto, who cannot read a key left 0600 to root where the CLI or fleet-certs.sh
# made it.
tls_files=()
copy_tls_file() {  # SRC NAME MODE: copies SRC to <data-dir>/NAME
  install -m "$3" "$1" "$data_dir/$2"
  tls_files+=("$data_dir/$2")
}
if [ -n "$tls_port" ]; then
  copy_tls_file "$tls_ca" tls-ca.crt 0644
  copy_tls_file "$tls_cert" tls.crt 0644
  copy_tls_file "$tls_key" tls.key 0600
  ws="$ws
listener $tls_port $bind
cafile $data_dir/tls-ca.crt
certfile $data_dir/tls.crt
keyfile $data_dir/tls.key"
  # Central: each rig proves who it is with its certificate, whose CN is its user name for
  # the ACL's patterns; no password is asked (nor read) on this listener.
  if [ "$central" = 1 ]; then
    ws="$ws
require_certificate true
use_identity_as_username true"
  fi
fi
conf="$data_dir/mosquitto.conf"

# The bridge to the central broker (docs/interface.md, "Fleet"), with the rig's certificate.
write_bridge() {
  local base="$prefix/$rig_id" t
  cat <<EOF

# Bridge to the fleet's central broker. MQTT 3.1.1 on purpose: mosquitto 2.0's v5 bridge
# sends no Session Expiry Interval, so the central broker ends its session at every
# disconnect and drops the requests queued for the rig meanwhile (mosquitto issues #1632,
# #2424, #2793, #2980; still open for 2.0.18). Checked on Debian 12's 2.0.11: a request
# published centrally while the rig's broker was down arrived after it came back over a
# 3.1.1 bridge and was lost over a v5 one. A 3.1.1 bridge with cleansession false keeps
# its session on both sides for as long as persistent_client_expiration allows.
connection photorig-$rig_id
address $bridge_to
remote_clientid photorig-bridge-$rig_id
local_clientid photorig-bridge-$rig_id-local
bridge_protocol_version mqttv311
cleansession false
try_private true
restart_timeout 1 10
keepalive_interval 30
bridge_cafile $data_dir/bridge-ca.crt
bridge_certfile $data_dir/bridge.crt
bridge_keyfile $data_dir/bridge.key
bridge_insecure false
notifications true
notifications_local_only false
notification_topic $base/bridge/state
# Out: listed one by one, so that upload/jobs (the uploader's work) and _probe/# stay local.
# Not bridge/state: mosquitto publishes that on the central broker itself (and its will);
# bridged too, the local `0` queued while the bridge was down would follow the `1` after a
# reconnect and leave the central broker showing `0` (tests/integration/fleet_broker).
EOF
  for t in availability state "response/#" capture upload/events telemetry event "camera/#" \
    preview "preview/#" scan/state scan/move "uploader/#"; do
    echo "topic $base/$t out 1"
  done
  cat <<EOF
topic homeassistant/device/$rig_id/config out 1
# In: this rig's requests, every group's requests (the agent keeps those of its groups),
# turntable acknowledgements and Home Assistant's birth message.
topic $base/request/# in 1
topic $prefix/group/# in 1
topic $base/scan/ready in 1
topic homeassistant/status in 1
EOF
}
awk -v port="$port" -v bind="$bind" -v dir="$data_dir" -v ws="$ws" '
  { gsub(/@PORT@/, port); gsub(/@BIND@/, bind); gsub(/@DATA_DIR@/, dir); gsub(/@WS_LISTENER@/, ws); print }
' "$here/mosquitto.conf.in" > "$conf"
if [ -n "$bridge_to" ]; then
  copy_tls_file "$bridge_ca" bridge-ca.crt 0644
  copy_tls_file "$bridge_cert" bridge.crt 0644
  copy_tls_file "$bridge_key" bridge.key 0600
  write_bridge >> "$conf"
fi
if [ "$stock_tuning" = 1 ]; then
  sed -i -e '/^set_tcp_nodelay /d' -e 's/^autosave_on_changes true/autosave_on_changes false/' \
    -e 's/^autosave_interval 1$/autosave_interval 1800/' "$conf"
fi

# Run as root, mosquitto switches to user "mosquitto" before reading its files. Hand the
# broker's own files to that user when it can reach them; when it cannot (a data dir under
# a private 0700 parent, as in tests), keep running as root rather than fail to start.
if [ "$(id -u)" -eq 0 ] && id mosquitto >/dev/null 2>&1; then
  chown mosquitto: "$data_dir" "$passwd_file" "$data_dir/acl" "$conf"
  [ "${#tls_files[@]}" -eq 0 ] || chown mosquitto: "${tls_files[@]}"
  [ -f "$data_dir/mosquitto.db" ] && chown mosquitto: "$data_dir/mosquitto.db"
  if ! runuser -u mosquitto -- test -r "$passwd_file" 2>/dev/null; then
    echo "user root" >> "$conf"
  fi
fi

[ "$setup_only" = 1 ] && exit 0
exec mosquitto -c "$conf"

#!/usr/bin/env bash
# Starts mosquitto in the foreground with photorig's configuration.
#
#   broker/run-broker.sh --port 1883 --data-dir /var/lib/photorig/broker \
#       [--bind 127.0.0.1] [--ws-port 9001] [--prefix photorig] [--rig-id rig1] [--stock-tuning]
#       [--secrets-dir DIR] [--setup-only]
#       [--tls-port 8883 --ca ca.pem --cert server.pem --key server.key]
#
# --rig-id (default rig1) is the rig whose jobs and upload events photorig-uploader may
# read and write: that user gets no other rig's topics.
# --tls-port adds an MQTT-over-TLS listener with that certificate chain (clients verify it
# against the CA). Every listener (TCP, websockets, TLS) asks for a user and password.
# --stock-tuning leaves out photorig's socket and save tuning (set_tcp_nodelay, saving on
# every change), as Debian's stock config and Home Assistant's add-on do: for measuring
# how photorig fares on a broker that is not its own, never for a rig.
# On first start it creates one password per user (photorig-agent, photorig-uploader,
# photorig-dashboard) in <data-dir>/secrets/<user>.password (or --secrets-dir DIR), mode
# 0600: point mqtt.password_file at the right one. Existing passwords are kept.
# --setup-only writes the files and exits (the Debian package's postinst does this).
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

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
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
  tls_ca="$(realpath "$tls_ca")"; tls_cert="$(realpath "$tls_cert")"; tls_key="$(realpath "$tls_key")"
fi
# The rig id goes into the ACL as one topic level: the same rule as the config's rig_id.
case "$rig_id" in ''|*[!a-z0-9_-]*) echo "run-broker.sh: --rig-id must match [a-z0-9_-]+" >&2; exit 2 ;; esac
command -v mosquitto >/dev/null || { echo "run-broker.sh: mosquitto is not installed (run deploy/install-deps.sh)" >&2; exit 1; }

[ -n "$secrets_dir" ] || secrets_dir="$data_dir/secrets"
mkdir -p "$data_dir" "$secrets_dir"
data_dir="$(cd "$data_dir" && pwd)"
chmod 700 "$secrets_dir"

passwd_file="$data_dir/passwd"
touch "$passwd_file"
chmod 600 "$passwd_file"
for user in photorig-agent photorig-uploader photorig-dashboard; do
  secret="$secrets_dir/$user.password"
  if [ ! -s "$secret" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$secret"; echo >> "$secret")
  fi
  chmod 600 "$secret"
  if ! grep -q "^$user:" "$passwd_file"; then
    mosquitto_passwd -b "$passwd_file" "$user" "$(head -n1 "$secret")"
  fi
done

sed -e "s|@PREFIX@|$prefix|g" -e "s|@RIG@|$rig_id|g" "$here/acl.in" > "$data_dir/acl"
ws=""
if [ -n "$ws_port" ]; then
  ws="listener $ws_port $bind
protocol websockets
socket_domain ipv4"
fi
if [ -n "$tls_port" ]; then
  ws="$ws
listener $tls_port $bind
cafile $tls_ca
certfile $tls_cert
keyfile $tls_key"
fi
conf="$data_dir/mosquitto.conf"
awk -v port="$port" -v bind="$bind" -v dir="$data_dir" -v ws="$ws" '
  { gsub(/@PORT@/, port); gsub(/@BIND@/, bind); gsub(/@DATA_DIR@/, dir); gsub(/@WS_LISTENER@/, ws); print }
' "$here/mosquitto.conf.in" > "$conf"
if [ "$stock_tuning" = 1 ]; then
  sed -i -e '/^set_tcp_nodelay /d' -e 's/^autosave_on_changes true/autosave_on_changes false/' \
    -e 's/^autosave_interval 1$/autosave_interval 1800/' "$conf"
fi

# Run as root, mosquitto switches to user "mosquitto" before reading its files. Hand the
# broker's own files to that user when it can reach them; when it cannot (a data dir under
# a private 0700 parent, as in tests), keep running as root rather than fail to start.
if [ "$(id -u)" -eq 0 ] && id mosquitto >/dev/null 2>&1; then
  chown mosquitto: "$data_dir" "$passwd_file" "$data_dir/acl" "$conf"
  [ -f "$data_dir/mosquitto.db" ] && chown mosquitto: "$data_dir/mosquitto.db"
  if ! runuser -u mosquitto -- test -r "$passwd_file" 2>/dev/null; then
    echo "user root" >> "$conf"
  fi
fi

[ "$setup_only" = 1 ] && exit 0
exec mosquitto -c "$conf"

#!/usr/bin/env bash
# dpkg -i: user, groups, directories (owners, modes), conffile, generated passwords, units
# verified by systemd-analyze; the packaged daemons capture a photo from the simulator and
# upload it into the local target; dpkg -r keeps the spool; dpkg --purge removes the rest.
source "$(dirname "$0")/lib.sh"
require_root
deb="$(deb_for "${PHOTORIG_VERSION:?}")"
purge_package

t0=$(date +%s.%N)
dpkg -i "$deb" > "$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log" >&2; fail "dpkg -i failed"; }
t_installed=$(date +%s.%N)

# --- the service user and its groups
getent passwd photorig >/dev/null || fail "no user photorig"
[ "$(getent passwd photorig | cut -d: -f7)" = /usr/sbin/nologin ] || fail "photorig has a login shell"
[ "$(id -u photorig)" -lt 1000 ] || fail "photorig is not a system user"
id -nG photorig | tr ' ' '\n' | grep -qx photorig || fail "photorig is not in group photorig"
id -nG photorig | tr ' ' '\n' | grep -qx plugdev || fail "photorig is not in group plugdev"

# --- directories, files, owners and modes
expect_stat() {  # path "owner:group mode"
  local got; got="$(stat -c '%U:%G %a' "$1" 2>/dev/null || echo missing)"
  [ "$got" = "$2" ] || fail "$1 is '$got', expected '$2'"
}
expect_stat /var/spool/photorig "photorig:photorig 750"
expect_stat /var/lib/photorig "photorig:photorig 750"
expect_stat /etc/photorig/secrets "photorig:photorig 700"
expect_stat /etc/photorig/rig.yaml "root:root 644"
expect_stat $SECRETS/photorig-agent.password "photorig:photorig 600"
expect_stat $SECRETS/photorig-uploader.password "photorig:photorig 600"
expect_stat $SECRETS/photorig-dashboard.password "root:root 600"
expect_stat /var/lib/photorig-broker/passwd "mosquitto:mosquitto 600"
for f in /usr/bin/rig-agent /usr/bin/rig-uploader /usr/bin/rigctl; do expect_stat $f "root:root 755"; done
for u in agent uploader broker; do expect_stat /lib/systemd/system/photorig-$u.service "root:root 644"; done
expect_stat /lib/udev/rules.d/70-photorig.rules "root:root 644"
grep -qx /etc/photorig/rig.yaml /var/lib/dpkg/info/photorig.conffiles || fail "rig.yaml is not a conffile"
for user in photorig-agent photorig-uploader photorig-dashboard; do
  [ "$(head -n1 $SECRETS/$user.password | wc -c)" -ge 25 ] || fail "$user's password is too short"
  grep -q "^$user:" /var/lib/photorig-broker/passwd || fail "$user is not in the broker's passwd"
done
[ "$(sort -u $SECRETS/*.password | wc -l)" = 3 ] || fail "the three passwords are not distinct"
/usr/bin/rig-agent --version | grep -qx "rig-agent ${PHOTORIG_UPSTREAM_VERSION:?}" || fail "rig-agent --version"
runuser -u photorig -- env PHOTORIG_MQTT_PASSWORD_FILE=$SECRETS/photorig-agent.password \
  /usr/bin/rig-agent --config /etc/photorig/rig.yaml --check-config || fail "packaged rig.yaml is not valid"
runuser -u photorig -- env PHOTORIG_MQTT_PASSWORD_FILE=$SECRETS/photorig-uploader.password \
  /usr/bin/rig-uploader --config /etc/photorig/rig.yaml --check-config || fail "packaged rig.yaml is not valid for the uploader"

# --- the installed units: systemd's own checks (executables, users, directives)
systemd-analyze verify /lib/systemd/system/photorig-{agent,uploader,broker}.service \
  || fail "systemd-analyze verify reports problems in the installed units"

# --- the packaged daemons, packaged config and broker config: capture, upload
t_checks_done=$(date +%s.%N)
start_broker
start_camera --capture-delay-ms 100 --image-size 2000000
record_events
start_daemons
capture 1
wait_uploaded 1 60
t1=$(date +%s.%N)
check_each_photo_once 1
secs() { python3 -c "print(f'{$2-$1:.2f}')"; }
echo "FIGURE dpkg -i: $(secs "$t0" "$t_installed") s; the test's checks: $(secs "$t_installed" "$t_checks_done") s;" \
  "broker + daemons started to first photo uploaded: $(secs "$t_checks_done" "$t1") s"
echo "FIGURE dpkg -i to first photo uploaded, without the test's checks:" \
  "$(python3 -c "print(f'{($t1-$t0)-($t_checks_done-$t_installed):.2f}')") s"
echo "FIGURE package size: $(stat -c %s "$deb") bytes ($deb)"
for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
PIDS=()

# --- fleet: a `bridge:` block in rig.yaml (quotes and trailing comments as an operator writes
# them) and `dpkg-reconfigure photorig` give the broker a TLS bridge with this rig's files.
/usr/share/photorig/fleet-certs.sh /etc/photorig/fleet rig1 > "$WORK/fleet-certs.log" 2>&1 \
  || { cat "$WORK/fleet-certs.log" >&2; fail "fleet-certs.sh failed"; }
cp /etc/photorig/rig.yaml "$WORK/rig.yaml.orig"
cat >> /etc/photorig/rig.yaml <<'YAML'
bridge:
  to: "central.example.org:8883"   # the studio's broker
  ca_file: /etc/photorig/fleet/ca.crt
  cert_file: '/etc/photorig/fleet/rig1.crt'
  key_file: /etc/photorig/fleet/rig1.key  # 0600
YAML
runuser -u photorig -- env PHOTORIG_MQTT_PASSWORD_FILE=$SECRETS/photorig-agent.password \
  /usr/bin/rig-agent --config /etc/photorig/rig.yaml --check-config || fail "rig.yaml with a bridge is not valid"
DEBIAN_FRONTEND=noninteractive dpkg-reconfigure photorig > "$WORK/reconfigure.log" 2>&1 \
  || { cat "$WORK/reconfigure.log" >&2; fail "dpkg-reconfigure failed"; }
conf=/var/lib/photorig-broker/mosquitto.conf
grep -qx 'address central.example.org:8883' $conf || fail "no bridge to central.example.org:8883 in $conf"
grep -qx 'topic photorig/rig1/state out 1' $conf || fail "the bridge does not carry the rig's state"
cmp -s /etc/photorig/fleet/rig1.crt /var/lib/photorig-broker/bridge.crt || fail "bridge.crt is not rig1's"
cmp -s /etc/photorig/fleet/ca.crt /var/lib/photorig-broker/bridge-ca.crt || fail "bridge-ca.crt is not the CA"
expect_stat /var/lib/photorig-broker/bridge.key "mosquitto:mosquitto 600"  # the broker reads it, nobody else
# Without the block again, the bridge goes.
cp "$WORK/rig.yaml.orig" /etc/photorig/rig.yaml
DEBIAN_FRONTEND=noninteractive dpkg-reconfigure photorig > "$WORK/reconfigure2.log" 2>&1 \
  || { cat "$WORK/reconfigure2.log" >&2; fail "dpkg-reconfigure failed"; }
! grep -q '^address ' $conf || fail "the bridge stayed in $conf after the block was removed"
rm -rf /etc/photorig/fleet

# --- dpkg -r: binaries and units go, the spool, state, passwords and user stay
touch /var/spool/photorig/kept-on-remove.jpg
dpkg -r photorig > "$WORK/dpkg-r.log" 2>&1 || { cat "$WORK/dpkg-r.log" >&2; fail "dpkg -r failed"; }
[ ! -e /usr/bin/rig-agent ] || fail "dpkg -r left /usr/bin/rig-agent"
[ ! -e /lib/systemd/system/photorig-agent.service ] || fail "dpkg -r left the agent unit"
[ -f /var/spool/photorig/kept-on-remove.jpg ] || fail "dpkg -r deleted the spool"
[ -d /var/lib/photorig/uploads ] || fail "dpkg -r deleted the state"
[ -f /etc/photorig/rig.yaml ] || fail "dpkg -r deleted the conffile (only purge may)"
[ -f $SECRETS/photorig-agent.password ] || fail "dpkg -r deleted the passwords"
getent passwd photorig >/dev/null || fail "dpkg -r deleted the user"

# --- dpkg --purge: user, group, config, passwords, spool, state, broker data
dpkg --purge photorig > "$WORK/dpkg-purge.log" 2>&1 || { cat "$WORK/dpkg-purge.log" >&2; fail "dpkg --purge failed"; }
for path in /etc/photorig /var/spool/photorig /var/lib/photorig /var/lib/photorig-broker; do
  [ ! -e "$path" ] || fail "dpkg --purge left $path"
done
! getent passwd photorig >/dev/null || fail "dpkg --purge left the user photorig"
! getent group photorig >/dev/null || fail "dpkg --purge left the group photorig"
dpkg-query -W photorig >/dev/null 2>&1 && fail "dpkg still knows photorig after purge"
echo "PASS"

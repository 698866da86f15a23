#!/usr/bin/env bash
# Upgrade loses nothing: version N installed and running, photos captured with the uploads
# slowed so some are spooled and one is in flight; version N+1 installed over it (dpkg -i)
# while the daemons run, then the restart its postinst asks systemd for (SIGTERM, start).
# Every photo arrives exactly once; spool, upload journal, passwords and the edited conffile
# are kept.
source "$(dirname "$0")/lib.sh"
require_root
deb_n="$(deb_for "${PHOTORIG_VERSION:?}")"
deb_n1="$(deb_for "${PHOTORIG_UPGRADE_VERSION:?}")"
purge_package
photos=6

dpkg -i "$deb_n" > "$WORK/dpkg-n.log" 2>&1 || { cat "$WORK/dpkg-n.log" >&2; fail "dpkg -i N failed"; }
# An operator's edit to the conffile, which the upgrade must keep.
sed -i 's/^log_level: info/log_level: debug/' /etc/photorig/rig.yaml
secrets_before="$(sha256sum $SECRETS/*.password)"

start_broker
start_camera --capture-delay-ms 50 --image-size 1500000
record_events
# 1.5 MB photos at 1 MB/s: about 1.5 s each, so the upgrade lands mid-upload.
EXTRA_ENV="PHOTORIG_UPLOAD_BANDWIDTH_LIMIT_BYTES_PER_S=1000000 PHOTORIG_UPLOAD_CONCURRENCY=1"
start_daemons
capture "$photos"
# Wait until every photo is spooled and the first upload is under way, not finished.
deadline=$((SECONDS + 60))
until [ "$(grep -c '/capture ' "$WORK/events.log" || true)" -ge "$photos" ] &&
      grep -q '"type":"started"' "$WORK/events.log"; do
  [ $SECONDS -lt $deadline ] || { tail -n 30 "$WORK"/*.log >&2; fail "captures or the first upload did not start"; }
  sleep 0.05
done
[ "$(uploaded_count)" -lt "$photos" ] || fail "every upload finished before the upgrade; slow them more"
journal_inode="$(stat -c %i /var/lib/photorig/uploader.sqlite)"
echo "upgrading with $(spooled_count) photos spooled, $(uploaded_count) uploaded"

dpkg -i "$deb_n1" > "$WORK/dpkg-n1.log" 2>&1 || { cat "$WORK/dpkg-n1.log" >&2; fail "dpkg -i N+1 failed"; }
[ "$(dpkg-query -W -f='${Version}' photorig)" = "$PHOTORIG_UPGRADE_VERSION" ] || fail "N+1 is not installed"
restart_daemons
capture 1   # the restarted rig still captures
wait_uploaded $((photos + 1)) 90
sleep 1     # a duplicate upload would show up now
check_each_photo_once $((photos + 1))

grep -q '^log_level: debug' /etc/photorig/rig.yaml || fail "the upgrade overwrote the edited rig.yaml"
[ ! -e /etc/photorig/rig.yaml.dpkg-new ] || fail "the upgrade left rig.yaml.dpkg-new"
[ "$(sha256sum $SECRETS/*.password)" = "$secrets_before" ] || fail "the upgrade changed the passwords"
[ "$(stat -c %i /var/lib/photorig/uploader.sqlite)" = "$journal_inode" ] || fail "the upgrade replaced the upload journal"
[ -d /var/spool/photorig ] || fail "the upgrade removed the spool"
leftover="$(spooled_count)"
[ "$leftover" = 0 ] || fail "$leftover photos still in the spool after all uploads"
echo "PASS"

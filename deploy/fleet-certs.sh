#!/usr/bin/env bash
# Makes the certificates of a photorig fleet (issue 14) with the openssl CLI:
#
#   deploy/fleet-certs.sh DIR RIG_ID... [--central-name NAME]... [--days N]
#
# DIR/ca.crt, DIR/ca.key          the fleet's own CA (made once, kept on every later run)
# DIR/central.crt, central.key    the central broker's server certificate, valid for
#                                 localhost, 127.0.0.1 and each --central-name (a DNS name,
#                                 or an IPv4/IPv6 address)
# DIR/<rig_id>.crt, <rig_id>.key  one client certificate per rig; CN = the rig id, which the
#                                 central broker takes as the rig's user name
#                                 (use_identity_as_username) and its ACL patterns (%u)
#
# Running it again adds the rigs that have no certificate yet and keeps the CA and every
# existing certificate and key (delete a rig's two files to reissue it). The central
# certificate is remade (same key) only when it is missing or a --central-name is not in it
# yet, and then holds only the names given on that run: give every name each time.
# Keys are 0600; certificates 0644. Copy ca.crt + <rig_id>.crt/.key to each rig
# (mqtt bridge: rig.yaml `bridge:`), ca.crt + central.crt/.key to the central broker.
# Rig ids follow rig_id's rule ([a-z0-9_-]{1,64}); photorig-dashboard is refused: on the
# central broker that name is the password user of dashboards, and a certificate with it
# would log in as that user.
set -euo pipefail

usage() { awk 'NR > 1 { if (!/^#/) exit; print }' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "fleet-certs.sh: $*" >&2; exit 2; }

dir=""
days=3650
rigs=()
central_names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --central-name) [ $# -ge 2 ] || die "--central-name needs a value"; central_names+=("$2"); shift 2 ;;
    --days) [ $# -ge 2 ] || die "--days needs a value"; days="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option '$1'" ;;
    *) if [ -z "$dir" ]; then dir="$1"; else rigs+=("$1"); fi; shift ;;
  esac
done
[ -n "$dir" ] || { usage >&2; die "DIR is required"; }
case "$days" in ''|*[!0-9]*) die "--days must be a number" ;; esac
for rig in "${rigs[@]+"${rigs[@]}"}"; do
  if [ "${#rig}" -gt 64 ] || ! [[ "$rig" =~ ^[a-z0-9_-]+$ ]]; then
    die "rig id '$rig' must match [a-z0-9_-]{1,64}"
  fi
  case "$rig" in
    photorig-dashboard) die "rig id 'photorig-dashboard' is the dashboards' user on the central broker" ;;
    ca|central) die "rig id '$rig' would overwrite DIR/$rig.crt (the fleet's own files)" ;;
  esac
done
for name in "${central_names[@]+"${central_names[@]}"}"; do
  [[ "$name" =~ ^[A-Za-z0-9.:*-]+$ ]] || die "--central-name '$name' is not a host name or address"
done
command -v openssl >/dev/null || die "openssl is not installed (Debian package openssl)"

mkdir -p "$dir"
cd "$dir"
umask 077

# A key (0600 from the umask) and nothing else; EC P-256: small and fast on a Raspberry Pi.
new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -s ca.key ] || [ ! -s ca.crt ]; then
  [ -e ca.crt ] && die "$dir/ca.crt exists without ca.key: refusing to make a second CA"
  new_key ca.key
  openssl req -x509 -new -key ca.key -days "$days" -subj "/CN=photorig fleet CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.crt
fi

# sign NAME SUBJECT EXTENSIONS: NAME.key (kept when present) + NAME.crt signed by the CA.
sign() {
  local name="$1" subject="$2" ext="$3"
  [ -s "$name.key" ] || new_key "$name.key"
  openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr"
  printf '%s\n' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
  chmod 0600 "$name.key"
  chmod 0644 "$name.crt"
}

san="DNS:localhost,IP:127.0.0.1"
for name in "${central_names[@]+"${central_names[@]}"}"; do
  if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then san="$san,IP:$name"; else san="$san,DNS:$name"; fi
done
central_missing_name() {
  local have
  have="$(openssl x509 -in central.crt -noout -ext subjectAltName 2>/dev/null)" || return 0
  for name in "${central_names[@]+"${central_names[@]}"}"; do
    grep -qiE "(DNS:|IP Address:)$name(,|$)" <<<"$have" || return 0
  done
  return 1
}
if [ ! -s central.crt ] || central_missing_name; then
  sign central "/CN=photorig central broker" \
    "subjectAltName=$san
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
fi

for rig in "${rigs[@]+"${rigs[@]}"}"; do
  [ -s "$rig.crt" ] && [ -s "$rig.key" ] && continue
  sign "$rig" "/CN=$rig" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
done
chmod 0600 ca.key
chmod 0644 ca.crt
rm -f ca.srl

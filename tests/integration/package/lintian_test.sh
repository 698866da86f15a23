#!/usr/bin/env bash
# lintian reports no errors on the package; warnings are printed for the record.
#   lintian_test.sh [DEB]   # default: this build's package (ctest); tests/run-all.sh also
#                           # passes the arm64 package of the cross build
set -euo pipefail
deb="${1:-${PHOTORIG_BINARY_DIR:?}/deb/photorig_${PHOTORIG_VERSION:?}_$(dpkg --print-architecture).deb}"
[ -f "$deb" ] || { echo "FAIL: $deb is missing" >&2; exit 1; }
command -v lintian >/dev/null || { echo "FAIL: lintian is missing (deploy/install-deps.sh --with-tests)" >&2; exit 1; }
# lintian refuses to run as root unless told; it only reads the package.
out="$(lintian --allow-root --fail-on none --display-info --show-overrides "$deb" 2>&1)"
echo "$out"
if grep -q '^E: ' <<<"$out"; then
  echo "FAIL: lintian reports errors" >&2
  exit 1
fi
echo "PASS: no lintian errors ($(grep -c '^W: ' <<<"$out" || true) warnings)"

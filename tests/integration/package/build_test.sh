#!/usr/bin/env bash
# Builds the packages the other package tests use, from this build tree (no third compile):
# version N (project(VERSION)) and N+1 for the upgrade test.
set -euo pipefail
out="${PHOTORIG_BINARY_DIR:?}/deb"
rm -rf "$out"
export PHOTORIG_DEB_BUILD_DIR="$PHOTORIG_BINARY_DIR"
"${PHOTORIG_SOURCE_DIR:?}/deploy/build-deb.sh" "$out"
PHOTORIG_DEB_VERSION="${PHOTORIG_UPGRADE_UPSTREAM:?}" "$PHOTORIG_SOURCE_DIR/deploy/build-deb.sh" "$out"
arch="$(dpkg --print-architecture)"
for v in "${PHOTORIG_VERSION:?}" "${PHOTORIG_UPGRADE_VERSION:?}"; do
  deb="$out/photorig_${v}_$arch.deb"
  [ -f "$deb" ] || { echo "FAIL: $deb was not built" >&2; exit 1; }
  [ "$(dpkg-deb -f "$deb" Version)" = "$v" ] || { echo "FAIL: $deb has version $(dpkg-deb -f "$deb" Version)" >&2; exit 1; }
done
deps="$(dpkg-deb -f "$out/photorig_${PHOTORIG_VERSION}_$arch.deb" Depends)"
echo "Depends: $deps"
for lib in libgphoto2 libpaho-mqttpp libcurl libyaml-cpp libsqlite3 adduser mosquitto; do
  grep -q "$lib" <<<"$deps" || { echo "FAIL: Depends lacks $lib (dpkg-shlibdeps)" >&2; exit 1; }
done
echo "FIGURE package size: $(stat -c %s "$out/photorig_${PHOTORIG_VERSION}_$arch.deb") bytes"

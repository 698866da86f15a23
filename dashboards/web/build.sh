#!/usr/bin/env bash
# Assembles the web dashboard into OUT_DIR: the page, its script and style, and MQTT.js's
# browser bundle copied from node_modules (third-party minified code is never committed).
#
#   dashboards/web/build.sh OUT_DIR
#
# Installs MQTT.js (pinned by package-lock.json) with `npm ci` when it is not there yet.
# Serve OUT_DIR with any static web server, e.g. python3 -m http.server -d OUT_DIR 8080.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-}"
[ -n "$out" ] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

bundle="$here/node_modules/mqtt/dist/mqtt.min.js"
if [ ! -f "$bundle" ]; then
  command -v npm >/dev/null || { echo "build.sh: npm is needed to fetch MQTT.js (deploy/install-deps.sh --with-tests installs Node.js)" >&2; exit 1; }
  npm ci --prefix "$here" --no-audit --no-fund >&2
fi
mkdir -p "$out/vendor"
cp "$here/index.html" "$here/app.js" "$here/style.css" "$out/"
cp "$bundle" "$out/vendor/mqtt.min.js"

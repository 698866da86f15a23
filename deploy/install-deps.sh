#!/usr/bin/env bash
# Installs every Debian 12 package photorig needs to build, run and test.
# Idempotent: packages already present are left alone; safe to run again.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

RUNTIME_AND_BUILD=(
  build-essential cmake pkg-config git ca-certificates
  libgphoto2-dev gphoto2
  libpaho-mqttpp-dev libpaho-mqtt-dev
  libcurl4-openssl-dev libssl-dev
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev
  libsqlite3-dev sqlite3 libexif-dev
  mosquitto mosquitto-clients
  python3
)
TEST_ONLY=(
  libgtest-dev libgmock-dev googletest
  clang-format
  clang libclang-rt-14-dev  # the fuzz targets: clang with libFuzzer + ASan/UBSan runtimes
  procps psmisc
  rclone
  chromium
)

want=("${RUNTIME_AND_BUILD[@]}")
if [ "${1:-}" = "--with-tests" ]; then
  want+=("${TEST_ONLY[@]}")
  # Node runs the S3 test server (s3rver), Node-RED and the browser tests (playwright-core
  # drives Debian's chromium; it never downloads a browser of its own). A machine may
  # already have a Node.js build that bundles npm (nodesource's conflicts with Debian's
  # npm package): use it when present.
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v npm >/dev/null 2>&1 || want+=(npm)
fi

missing=()
for pkg in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The broker is started by photorig's own script; don't leave Debian's
# system-wide mosquitto service holding port 1883.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
  $SUDO systemctl stop mosquitto || true
  $SUDO systemctl disable mosquitto || true
fi

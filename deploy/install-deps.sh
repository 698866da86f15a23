#!/usr/bin/env bash
# Installs every Debian 12 package photorig needs to build, run and test.
# Idempotent: packages already present are left alone; safe to run again.
#
#   deploy/install-deps.sh                 # build and run on this machine
#   deploy/install-deps.sh --with-tests    # also what the tests need
#   deploy/install-deps.sh --cross-arm64   # also cross-build for arm64 (Raspberry Pi OS
#                                          # 64-bit / Debian arm64): Debian's cross gcc, qemu,
#                                          # and the :arm64 versions of LINKED_LIBS_DEV
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

with_tests=0
cross_arm64=0
for arg in "$@"; do
  case "$arg" in
    --with-tests) with_tests=1 ;;
    --cross-arm64) cross_arm64=1 ;;
    *) echo "install-deps: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

BUILD_TOOLS=(build-essential cmake pkg-config git ca-certificates)
# The libraries the binaries link, one list for both builds: the native build installs them
# for this machine, --cross-arm64 installs their :arm64 versions beside them (multiarch).
LINKED_LIBS_DEV=(
  libgphoto2-dev
  libpaho-mqttpp-dev libpaho-mqtt-dev
  libcurl4-openssl-dev libssl-dev
  libyaml-cpp-dev
  libsqlite3-dev libexif-dev
  libsystemd-dev
)
# Header-only (Architecture: all): the one package serves the native and the cross build.
HEADER_ONLY_DEV=(nlohmann-json3-dev libcli11-dev)
RUNTIME_TOOLS=(gphoto2 sqlite3 mosquitto mosquitto-clients python3)
TEST_ONLY=(
  libgtest-dev libgmock-dev googletest
  clang-format
  procps psmisc
  lintian systemd adduser dpkg-dev
  openssl
  rclone
  chromium
)
# Debian 12's libyaml-cpp-dev is not "Multi-Arch: same", so its :arm64 version cannot be
# installed beside the native one. The cross build takes the headers from the native
# package and links the :arm64 runtime library (deploy/toolchain-arm64.cmake).
declare -A CROSS_ARM64_INSTEAD=([libyaml-cpp-dev]=libyaml-cpp0.7)

want=("${BUILD_TOOLS[@]}" "${LINKED_LIBS_DEV[@]}" "${HEADER_ONLY_DEV[@]}" "${RUNTIME_TOOLS[@]}")
if [ "$with_tests" = 1 ]; then
  want+=("${TEST_ONLY[@]}")
  # Node runs the S3 test server (s3rver), Node-RED and the browser tests (playwright-core
  # drives Debian's chromium; it never downloads a browser of its own). A machine may
  # already have a Node.js build that bundles npm (nodesource's conflicts with Debian's
  # npm package): use it when present.
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v npm >/dev/null 2>&1 || want+=(npm)
fi
new_architecture=0
if [ "$cross_arm64" = 1 ]; then
  # qemu-user-static runs the arm64 binaries in tests/package/arm64_qemu_test.sh; file
  # checks that they are aarch64 ELF.
  want+=(crossbuild-essential-arm64 qemu-user-static file)
  for pkg in "${LINKED_LIBS_DEV[@]}"; do
    want+=("${CROSS_ARM64_INSTEAD[$pkg]:-$pkg}:arm64")
  done
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
    new_architecture=1
  fi
fi

missing=()
for pkg in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ] && [ "$new_architecture" = 0 ]; then
  echo "install-deps: all ${#want[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-remove: never take away a package of this machine to make room (a :arm64 -dev that
# is not co-installable would otherwise remove the native one the native build needs).
$SUDO apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}"
# The broker is started by photorig's own script; don't leave Debian's
# system-wide mosquitto service holding port 1883.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
  $SUDO systemctl stop mosquitto || true
  $SUDO systemctl disable mosquitto || true
fi

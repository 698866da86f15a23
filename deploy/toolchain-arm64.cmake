# Cross-compiles photorig for arm64 (Raspberry Pi OS 64-bit, Debian 12 arm64) on a Debian 12
# amd64 machine with Debian's own cross toolchain and multiarch :arm64 libraries, installed by
#   deploy/install-deps.sh --cross-arm64
# Use:
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=deploy/toolchain-arm64.cmake
# (deploy/cross-build-arm64.sh does that and builds). Tests are off by default in a cross
# build: they run on the build machine.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Multiarch: the :arm64 -dev packages put their libraries, CMake packages and .pc files
# under /usr/lib/aarch64-linux-gnu and share /usr/include with the native ones.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# The cross libc/libstdc++ live under /usr/aarch64-linux-gnu, the multiarch libraries under
# / (as /usr/lib/aarch64-linux-gnu). Libraries, headers and packages come only from these
# roots; programs (pkg-config, the tests' tools) are the build machine's.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg_check_modules sees only the arm64 .pc files (and the architecture-independent ones),
# never the build machine's: a stray PKG_CONFIG_PATH would otherwise leak amd64 flags in.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Debian 12's libyaml-cpp-dev is not "Multi-Arch: same", so its :arm64 version cannot sit
# beside the native one the native build needs. Without it, a small package config links
# the :arm64 runtime library (libyaml-cpp0.7:arm64) with the shared headers; apt keeps the
# two at one version (the native -dev pins the native runtime, which multiarch pins to
# the :arm64 one).
if(NOT EXISTS /usr/lib/aarch64-linux-gnu/cmake/yaml-cpp/yaml-cpp-config.cmake)
  list(APPEND CMAKE_PREFIX_PATH "${CMAKE_CURRENT_LIST_DIR}/cross-arm64")
endif()

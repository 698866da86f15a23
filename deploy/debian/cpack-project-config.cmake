# Read by cpack when it assembles the package (CPACK_PROJECT_CONFIG_FILE): the version and
# architecture deploy/build-deb.sh asks for, without reconfiguring the build.
if(NOT "$ENV{PHOTORIG_DEB_VERSION}" STREQUAL "")
  set(CPACK_PACKAGE_VERSION "$ENV{PHOTORIG_DEB_VERSION}")
  set(CPACK_DEBIAN_PACKAGE_VERSION "$ENV{PHOTORIG_DEB_VERSION}")
endif()
if(NOT "$ENV{PHOTORIG_DEB_ARCH}" STREQUAL "")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE "$ENV{PHOTORIG_DEB_ARCH}")
endif()

# Writes /usr/share/doc/photorig/changelog.Debian.gz when the package is assembled (an
# install script, run by cpack): its version is the package's, which build-deb.sh may
# override with PHOTORIG_DEB_VERSION. package.cmake sets the PHOTORIG_* variables used here.
set(PHOTORIG_DEB_UPSTREAM "$ENV{PHOTORIG_DEB_VERSION}")
if(PHOTORIG_DEB_UPSTREAM STREQUAL "")
  set(PHOTORIG_DEB_UPSTREAM "${PHOTORIG_PROJECT_VERSION}")
endif()
set(PHOTORIG_DEB_FULL_VERSION "${PHOTORIG_DEB_UPSTREAM}-${PHOTORIG_DEB_REVISION}")
string(TIMESTAMP PHOTORIG_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file("${PHOTORIG_DEBIAN_DIR}/changelog.in" "${PHOTORIG_DEB_WORK_DIR}/changelog.Debian" @ONLY)
execute_process(COMMAND gzip -9nf "${PHOTORIG_DEB_WORK_DIR}/changelog.Debian" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip changelog.Debian failed")
endif()
file(INSTALL "${PHOTORIG_DEB_WORK_DIR}/changelog.Debian.gz"
     DESTINATION "${CMAKE_INSTALL_PREFIX}/share/doc/photorig")

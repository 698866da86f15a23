# The Debian package (deploy/build-deb.sh): what goes where, and CPack's DEB generator.
# Paths outside the install prefix (/etc, /lib/systemd, /lib/udev) are absolute: the package
# installs with prefix /usr, and these belong where Debian keeps them.
set(PHOTORIG_DEBIAN_DIR ${PROJECT_SOURCE_DIR}/deploy/debian)
set(PHOTORIG_DEB_MAINTAINER "photorig maintainers <maintainers@photorig.example.org>")
# The package's Debian revision: its version is <project version>-<revision>.
set(PHOTORIG_DEB_REVISION 1)

install(FILES ${PHOTORIG_DEBIAN_DIR}/rig.yaml DESTINATION /etc/photorig)
install(DIRECTORY DESTINATION /etc/photorig/secrets
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
install(FILES ${PHOTORIG_DEBIAN_DIR}/photorig-agent.service
              ${PHOTORIG_DEBIAN_DIR}/photorig-uploader.service
              ${PHOTORIG_DEBIAN_DIR}/photorig-broker.service
        DESTINATION /lib/systemd/system)
install(FILES ${PHOTORIG_DEBIAN_DIR}/70-photorig.rules DESTINATION /lib/udev/rules.d)
# The broker's configuration is generated at install time from the same templates
# broker/run-broker.sh uses in a checkout.
install(PROGRAMS ${PROJECT_SOURCE_DIR}/broker/run-broker.sh DESTINATION share/photorig/broker)
install(FILES ${PROJECT_SOURCE_DIR}/broker/mosquitto.conf.in ${PROJECT_SOURCE_DIR}/broker/acl.in
              ${PROJECT_SOURCE_DIR}/broker/acl-central.in
        DESTINATION share/photorig/broker)
# Fleet (issue 14): the certificates of a fleet, and `run-broker.sh --central` above.
install(PROGRAMS ${PROJECT_SOURCE_DIR}/deploy/fleet-certs.sh DESTINATION share/photorig)
install(FILES ${PHOTORIG_DEBIAN_DIR}/copyright DESTINATION share/doc/photorig)
install(FILES ${PHOTORIG_DEBIAN_DIR}/lintian-overrides DESTINATION share/lintian/overrides
        RENAME photorig)
# Documentation: the README, the interface and every config key, and the man pages,
# compressed as Debian policy wants.
function(photorig_install_gzipped source destination)
  get_filename_component(name ${source} NAME)
  install(CODE "execute_process(COMMAND gzip -9n -c \"${source}\"
                  OUTPUT_FILE \"${CMAKE_BINARY_DIR}/deb-doc/${name}.gz\")
                file(INSTALL \"${CMAKE_BINARY_DIR}/deb-doc/${name}.gz\"
                  DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${destination}\")")
endfunction()
foreach(doc README.md docs/interface.md config/photorig.example.yaml)
  photorig_install_gzipped(${PROJECT_SOURCE_DIR}/${doc} share/doc/photorig)
endforeach()
foreach(page rig-agent.1 rig-uploader.1 rigctl.1)
  photorig_install_gzipped(${PHOTORIG_DEBIAN_DIR}/man/${page} share/man/man1)
endforeach()
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/deb-doc)
# changelog.Debian.gz carries the package's version, which build-deb.sh may override
# (PHOTORIG_DEB_VERSION), so it is written when the package is assembled.
install(CODE "set(PHOTORIG_DEBIAN_DIR \"${PHOTORIG_DEBIAN_DIR}\")
              set(PHOTORIG_DEB_WORK_DIR \"${CMAKE_BINARY_DIR}/deb-doc\")
              set(PHOTORIG_PROJECT_VERSION \"${PROJECT_VERSION}\")
              set(PHOTORIG_DEB_REVISION \"${PHOTORIG_DEB_REVISION}\")
              set(PHOTORIG_DEB_MAINTAINER \"${PHOTORIG_DEB_MAINTAINER}\")")
install(SCRIPT ${PHOTORIG_DEBIAN_DIR}/install-changelog.cmake)

# cpack (and `make install`) must not build `all` first: with tests on that is every test
# and benchmark. build-deb.sh builds the three packaged binaries itself; build before
# installing by hand.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME photorig)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${PHOTORIG_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_RELEASE ${PHOTORIG_DEB_REVISION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "edge agent driving libgphoto2 cameras over MQTT")
set(CPACK_PACKAGE_DESCRIPTION
    "photorig keeps a rig's USB and PTP/IP cameras open, captures on MQTT\ncommands, spools every photo locally and uploads it exactly once (local\ndirectory, S3, WebDAV, Google Drive). The package runs rig-agent,\nrig-uploader and a mosquitto broker with photorig's configuration as\nhardened systemd services; rigctl is the operator's client.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, mosquitto (>= 2.0)")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "mosquitto-clients")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PHOTORIG_DEBIAN_DIR}/conffiles ${PHOTORIG_DEBIAN_DIR}/postinst
    ${PHOTORIG_DEBIAN_DIR}/prerm ${PHOTORIG_DEBIAN_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# build-deb.sh's version override and target architecture, read when cpack runs.
set(CPACK_PROJECT_CONFIG_FILE ${PHOTORIG_DEBIAN_DIR}/cpack-project-config.cmake)
include(CPack)

# Installation layout and the Debian package. Included from the root CMakeLists.txt.
#
#   cmake --install build [--prefix P]        (DESTDIR=... honoured)
#   cpack --config build/CPackConfig.cmake -B OUT   ->  OUT/cl-tokend_<version>_<arch>.deb
#
# The binaries install to bin/ (rules next to their targets). Files that name other paths
# (the service's ExecStart=, the config folder in tmpfiles.d) are rendered at *install*
# time from the prefix in effect then, so that --prefix, DESTDIR and CPack all produce
# files that agree with where things actually land (cmake/install_systemd.cmake).
#
# Where they go, relative to the install prefix P unless the cache variable is set:
#   P/lib/systemd/system/cl-tokend.{service,socket}   CLTOKEN_SYSTEMD_UNITDIR
#   P/lib/sysusers.d/cl-tokend.conf                   CLTOKEN_SYSUSERSDIR
#   P/lib/tmpfiles.d/cl-tokend.conf                   CLTOKEN_TMPFILESDIR
#   SYSCONF/cl-tokend/cl-tokend.toml.example          (SYSCONF: /etc for P=/usr, /etc/opt/X
#                                                      for P=/opt/X, else P/etc)
#   P/share/doc/cl-tokend/operations.md
# (systemd reads /usr/lib/systemd/system and /usr/local/lib/systemd/system alike.)
set(CLTOKEN_SYSTEMD_UNITDIR "" CACHE PATH "Absolute folder for the unit files (default: <prefix>/lib/systemd/system)")
set(CLTOKEN_SYSUSERSDIR "" CACHE PATH "Absolute folder for sysusers.d (default: <prefix>/lib/sysusers.d)")
set(CLTOKEN_TMPFILESDIR "" CACHE PATH "Absolute folder for tmpfiles.d (default: <prefix>/lib/tmpfiles.d)")

install(CODE "
  set(CLTOKEN_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
  set(CLTOKEN_RENDER_DIR \"${PROJECT_BINARY_DIR}/install-rendered\")
  set(CLTOKEN_BINDIR_REL \"${CMAKE_INSTALL_BINDIR}\")
  set(CLTOKEN_DOCDIR_REL \"${CMAKE_INSTALL_DOCDIR}\")
  set(CLTOKEN_SYSTEMD_UNITDIR \"${CLTOKEN_SYSTEMD_UNITDIR}\")
  set(CLTOKEN_SYSUSERSDIR \"${CLTOKEN_SYSUSERSDIR}\")
  set(CLTOKEN_TMPFILESDIR \"${CLTOKEN_TMPFILESDIR}\")
  include(\"${CMAKE_CURRENT_LIST_DIR}/install_systemd.cmake\")
")
install(FILES ${PROJECT_SOURCE_DIR}/docs/operations.md DESTINATION ${CMAKE_INSTALL_DOCDIR} OPTIONAL)

# --- Debian package ---------------------------------------------------------------------
# Installs under /usr and /etc; its maintainer scripts create the user and group
# (systemd-sysusers) and the config folder (systemd-tmpfiles), and enable or start nothing:
# the operator writes the config first. An upgrade restarts a daemon that is running.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cl-tokend)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Commerce Layer token broker for local services")
set(CPACK_PACKAGE_DESCRIPTION "cl-tokend holds Commerce Layer API credentials, keeps one valid access token per credential in memory, refreshes it before expiry within the auth server's rate limit, and serves it to local services over a Unix socket. cl-tokenctl is its command-line client.")
set(CPACK_PACKAGE_CONTACT "cl-tokend maintainers <cl-tokend@localhost>")
# Always /usr, whatever prefix the build tree was configured with. The install-time
# rendering needs the real prefix with DESTDIR pointing at the staging folder, not a
# prefix inside the staging folder: hence SET_DESTDIR, which installs with
# CPACK_INSTALL_PREFIX.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
# Like Debian's own packages: no debug information in the binaries.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# systemd-sysusers and systemd-tmpfiles for the maintainer scripts; deb-systemd-helper.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd, init-system-helpers")
set(CLTOKEN_DEB_SYSCONFDIR /etc)
set(CLTOKEN_DEB_LIBDIR ${CPACK_PACKAGING_INSTALL_PREFIX}/lib)
set(CLTOKEN_DEB_CONTROL)
foreach(script postinst prerm postrm conffiles)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/${script}.in ${PROJECT_BINARY_DIR}/debian/${script} @ONLY)
  list(APPEND CLTOKEN_DEB_CONTROL ${PROJECT_BINARY_DIR}/debian/${script})
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CLTOKEN_DEB_CONTROL})
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)

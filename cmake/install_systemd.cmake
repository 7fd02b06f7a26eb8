# Runs at install time (from cmake_install.cmake, also under CPack): renders the files that
# name install paths from the prefix in effect now, and installs them. file(INSTALL) adds
# $ENV{DESTDIR} to absolute destinations and records them in install_manifest.txt.
set(prefix "${CMAKE_INSTALL_PREFIX}")
# GNU conventions, as GNUInstallDirs applies them.
if(prefix STREQUAL "/usr")
  set(sysconfdir "/etc")
elseif(prefix MATCHES "^/opt/")
  set(sysconfdir "/etc${prefix}")
else()
  set(sysconfdir "${prefix}/etc")
endif()
foreach(kind SYSTEMD_UNITDIR:lib/systemd/system SYSUSERSDIR:lib/sysusers.d TMPFILESDIR:lib/tmpfiles.d)
  string(REPLACE ":" ";" kind "${kind}")
  list(GET kind 0 var)
  list(GET kind 1 rel)
  if(NOT CLTOKEN_${var})
    set(CLTOKEN_${var} "${prefix}/${rel}")
  endif()
endforeach()
set(CLTOKEN_BINDIR "${prefix}/${CLTOKEN_BINDIR_REL}")
set(CLTOKEN_DOCDIR "${prefix}/${CLTOKEN_DOCDIR_REL}")
set(CLTOKEN_CONFDIR "${sysconfdir}/cl-tokend")

set(src "${CLTOKEN_SOURCE_DIR}/systemd")
# One folder per destination: a test's install and a package build may run at once.
string(MD5 key "$ENV{DESTDIR}|${prefix}")
set(out "${CLTOKEN_RENDER_DIR}/${key}")
file(REMOVE_RECURSE "${out}")
configure_file("${src}/cl-tokend.service.in" "${out}/units/cl-tokend.service" @ONLY)
configure_file("${src}/cl-tokend.socket" "${out}/units/cl-tokend.socket" COPYONLY)
configure_file("${src}/sysusers.d/cl-tokend.conf" "${out}/sysusers/cl-tokend.conf" COPYONLY)
configure_file("${src}/tmpfiles.d/cl-tokend.conf.in" "${out}/tmpfiles/cl-tokend.conf" @ONLY)
configure_file("${CLTOKEN_SOURCE_DIR}/config/cl-tokend.toml" "${out}/etc/cl-tokend.toml.example" COPYONLY)

file(INSTALL "${out}/units/cl-tokend.service" "${out}/units/cl-tokend.socket" DESTINATION "${CLTOKEN_SYSTEMD_UNITDIR}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(INSTALL "${out}/sysusers/cl-tokend.conf" DESTINATION "${CLTOKEN_SYSUSERSDIR}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(INSTALL "${out}/tmpfiles/cl-tokend.conf" DESTINATION "${CLTOKEN_TMPFILESDIR}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# An example, never the live config: the operator copies it to cl-tokend.toml and edits.
file(INSTALL "${out}/etc/cl-tokend.toml.example" DESTINATION "${CLTOKEN_CONFDIR}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

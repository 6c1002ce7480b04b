# Installs the systemd units of deploy/systemd. Run by `cmake --install`
# (install(SCRIPT) in the top-level CMakeLists.txt), after an install(CODE)
# that sets:
#   CHIPLOC_UNIT_SRC     deploy/systemd of the source tree
#   CHIPLOC_UNIT_STAGE   a directory of the build tree for the rewritten units
#   CHIPLOC_UNIT_DIR     unit directory, relative to the install prefix or absolute
#   CHIPLOC_UNIT_BINDIR  bin directory, relative to the install prefix or absolute
#   CHIPLOC_UNITS        the services to install (an agent-only build: the agent's),
#                        each with its companions (below)
# The units in the source tree start the binaries from /usr/bin; here every
# "=/usr/bin/" becomes the bin directory of the prefix given at install time
# (`cmake --install BUILD --prefix P`), so the units always start the
# binaries installed with them. DESTDIR is honoured by file(INSTALL).
foreach(var CHIPLOC_UNIT_SRC CHIPLOC_UNIT_STAGE CHIPLOC_UNIT_DIR CHIPLOC_UNIT_BINDIR CHIPLOC_UNITS)
  if("${${var}}" STREQUAL "")
    message(FATAL_ERROR "install-units.cmake: ${var} is not set")
  endif()
endforeach()

if(IS_ABSOLUTE "${CHIPLOC_UNIT_DIR}")
  set(unit_dir "${CHIPLOC_UNIT_DIR}")
else()
  set(unit_dir "${CMAKE_INSTALL_PREFIX}/${CHIPLOC_UNIT_DIR}")
endif()
if(IS_ABSOLUTE "${CHIPLOC_UNIT_BINDIR}")
  set(bin_dir "${CHIPLOC_UNIT_BINDIR}")
else()
  set(bin_dir "${CMAKE_INSTALL_PREFIX}/${CHIPLOC_UNIT_BINDIR}")
endif()

# Each service brings its companions: the template for several instances
# on one host, and, with the verifier (a treaty-body build), the timers of
# the partition maintenance and the audit and the web dashboard, which run
# the same chiploc CLI.
set(units "")
foreach(unit ${CHIPLOC_UNITS})
  list(APPEND units ${unit})
  if(unit STREQUAL "chiploc-landmarkd.service")
    list(APPEND units chiploc-landmarkd@.service)
  elseif(unit STREQUAL "chiploc-chipagent.service")
    list(APPEND units chiploc-chipagent@.service)
  elseif(unit STREQUAL "chiploc-verifier.service")
    list(APPEND units chiploc-maintenance.service chiploc-maintenance.timer
                      chiploc-audit.service chiploc-audit.timer chiploc-dashboard.service)
  endif()
endforeach()

file(MAKE_DIRECTORY "${CHIPLOC_UNIT_STAGE}")
foreach(unit ${units})
  file(READ "${CHIPLOC_UNIT_SRC}/${unit}" text)
  string(REPLACE "=/usr/bin/" "=${bin_dir}/" text "${text}")
  file(WRITE "${CHIPLOC_UNIT_STAGE}/${unit}" "${text}")
  file(INSTALL DESTINATION "${unit_dir}" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES "${CHIPLOC_UNIT_STAGE}/${unit}")
endforeach()

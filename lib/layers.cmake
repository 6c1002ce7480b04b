# The external libraries each chiploc target may use, enforced at compile
# time; included by the top-level CMakeLists.txt so that every directory
# (lib, server, client, tests) can call chiploc_forbid_headers.

# Every external header a layer could reach by accident, and the library it
# belongs to. A target may include the ones of the libraries it is allowed.
set(CHIPLOC_EXTERNAL_HEADERS
  "sodium.h=libsodium"
  "protobuf-c/protobuf-c.h=protobuf-c"
  "geodesic.h=PROJ" "proj.h=PROJ"
  "ini.h=inih"
  "jansson.h=jansson"
  "microhttpd.h=libmicrohttpd"
  "uv.h=libuv"
  "libpq-fe.h=libpq")

# chiploc_forbid_headers(TARGET ALLOWED...): every external header whose
# library is not in ALLOWED becomes an #error for TARGET's sources.
function(chiploc_forbid_headers target)
  set(dir ${CMAKE_BINARY_DIR}/forbidden/${target})
  file(REMOVE_RECURSE ${dir})
  foreach(entry ${CHIPLOC_EXTERNAL_HEADERS})
    string(REPLACE "=" ";" pair "${entry}")
    list(GET pair 0 header)
    list(GET pair 1 library)
    if(NOT library IN_LIST ARGN)
      file(WRITE ${dir}/${header}
           "#error \"${target} may not use ${library} (${header}): see docs/ARCHITECTURE.md\"\n")
    endif()
  endforeach()
  target_include_directories(${target} BEFORE PRIVATE ${dir})
endfunction()

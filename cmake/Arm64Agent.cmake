# The static arm64 qtx-agent, cross-built from the native build: an
# ExternalProject configures this source tree again with
# cmake/toolchain-aarch64-linux-gnu.cmake and QTX_AGENT_ONLY into
# build/arm64 and builds the qtx-agent and qtx_agent_deb targets there,
# giving build/arm64/bin/qtx-agent and its package,
# build/arm64/iso/deb/qtx-agent_VERSION_arm64.deb. Rebuilt (a no-op when nothing changed) with every
# build of the native tree. protoc is the build machine's.
#
# On by default when Debian's cross compiler (g++-aarch64-linux-gnu) and the
# static arm64 libraries the agent links (libprotobuf-dev:arm64,
# nettle-dev:arm64, libcrypt-dev:arm64) are installed: scripts/setup.sh
# installs them. Sets QTX_ARM64_AGENT and QTX_ARM64_DEB (the paths) when on.
set(_qtx_arm64_libs /usr/lib/aarch64-linux-gnu)
find_program(QTX_AARCH64_CXX aarch64-linux-gnu-g++)
if(QTX_AARCH64_CXX AND EXISTS ${_qtx_arm64_libs}/libprotobuf-lite.a AND EXISTS ${_qtx_arm64_libs}/libnettle.a
   AND EXISTS ${_qtx_arm64_libs}/libcrypt.a)
  set(_qtx_arm64_default ON)
else()
  set(_qtx_arm64_default OFF)
endif()
option(QTX_BUILD_ARM64_AGENT "Cross-build the static arm64 qtx-agent into build/arm64 (needs g++-aarch64-linux-gnu)"
       ${_qtx_arm64_default})
if(NOT QTX_BUILD_ARM64_AGENT)
  message(STATUS "arm64 agent off: scripts/setup.sh installs the cross toolchain and the arm64 libraries")
  return()
endif()

include(ExternalProject)
set(QTX_ARM64_DIR ${CMAKE_BINARY_DIR}/arm64)
set(QTX_ARM64_AGENT ${QTX_ARM64_DIR}/bin/qtx-agent)
set(QTX_ARM64_DEB ${QTX_ARM64_DIR}/iso/deb/qtx-agent_${PROJECT_VERSION}_arm64.deb)
set(_qtx_arm64_args
    -DCMAKE_TOOLCHAIN_FILE=${PROJECT_SOURCE_DIR}/cmake/toolchain-aarch64-linux-gnu.cmake
    -DQTX_AGENT_ONLY=ON
    -DQTX_WERROR=${QTX_WERROR}
    -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE})
foreach(v CMAKE_C_FLAGS_RELWITHDEBINFO CMAKE_CXX_FLAGS_RELWITHDEBINFO QTX_CCACHE)
  if(DEFINED ${v})
    list(APPEND _qtx_arm64_args "-D${v}=${${v}}")
  endif()
endforeach()
ExternalProject_Add(qtx_arm64_agent
  SOURCE_DIR ${PROJECT_SOURCE_DIR}
  BINARY_DIR ${QTX_ARM64_DIR}
  PREFIX ${CMAKE_BINARY_DIR}/arm64-project
  CMAKE_ARGS ${_qtx_arm64_args}
  BUILD_COMMAND ${CMAKE_COMMAND} --build ${QTX_ARM64_DIR} --target qtx-agent qtx_agent_deb
  BUILD_ALWAYS ON
  BUILD_BYPRODUCTS ${QTX_ARM64_AGENT} ${QTX_ARM64_DEB}
  INSTALL_COMMAND ""
  USES_TERMINAL_BUILD ON)

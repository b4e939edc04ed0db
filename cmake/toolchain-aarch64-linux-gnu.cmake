# Cross-compiling for 64-bit Arm Linux with Debian's cross toolchain
# (g++-aarch64-linux-gnu) against the arm64 multiarch development packages
# (libprotobuf-dev:arm64, nettle-dev:arm64, libcrypt-dev:arm64, ...; the
# header-only toml++, Asio, spdlog and fmt headers are the same for every
# architecture). Programs the build runs (protoc) stay the host's own.
#
#   cmake -S . -B build/arm64 --toolchain cmake/toolchain-aarch64-linux-gnu.cmake -DQTX_AGENT_ONLY=ON
#
# The native build does this itself when QTX_BUILD_ARM64_AGENT is on.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# Libraries and headers from /usr (lib/aarch64-linux-gnu first, by the
# library architecture above), programs from the build machine.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

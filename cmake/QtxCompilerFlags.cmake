# Warnings, warnings-as-errors and sanitizers, applied through one interface
# target that every qtx target links (qtx_build_flags).
add_library(qtx_build_flags INTERFACE)
target_compile_options(qtx_build_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wcast-align -Wformat=2 -Wimplicit-fallthrough
  $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor -Woverloaded-virtual>)
if(QTX_WERROR)
  target_compile_options(qtx_build_flags INTERFACE -Werror)
endif()

if(QTX_SANITIZE)
  set(_qtx_san -fsanitize=${QTX_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_compile_options(${_qtx_san})
  add_link_options(-fsanitize=${QTX_SANITIZE})
endif()

if(QTX_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "QTX_BUILD_FUZZERS needs clang: configure with CXX=clang++-14 CC=clang-14")
  endif()
  # Everything is instrumented for coverage; only fuzz targets link the driver.
  add_compile_options(-fsanitize=fuzzer-no-link)
  if(NOT QTX_SANITIZE)
    add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
    add_link_options(-fsanitize=address,undefined)
  endif()
endif()

# Standalone Asio, configured the same way in every translation unit.
# Asio 1.22 decides between aligned_alloc and operator new from
# _GLIBCXX_HAVE_ALIGNED_ALLOC, which exists only once a libstdc++ header was
# included: translation units with different include orders then disagree
# (an ODR violation ASan reports as alloc-dealloc-mismatch). Pin the choice.
add_library(qtx_asio INTERFACE)
# ASIO_DISABLE_VISIBILITY: Asio's headers otherwise mark their classes
# visible, and libqtx-host would export them.
target_compile_definitions(qtx_asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED ASIO_DISABLE_STD_ALIGNED_ALLOC
  ASIO_DISABLE_VISIBILITY)

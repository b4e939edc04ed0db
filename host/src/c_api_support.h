// What the C API's translation units share: turning Errors and exceptions
// into qtx_error and codes, and strings into malloc'ed copies for the caller
// (released with qtx_free).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "error_table.h"
#include "qtx/host.h"
#include "qtx/host/error.h"

namespace qtx::host::c_api {

// The qtx_error_kind of `kind` (host/src/error_table.h).
inline int c_code(ErrorKind kind) {
  const detail::KindRow* row = detail::kind_row(kind);
  return row ? row->c_code : QTX_ERR_LOCAL;
}

inline void fill(qtx_error* err, const Error& e) {
  if (err == nullptr) return;
  err->kind = c_code(e.kind());
  err->guest_code = e.guest_code();
  err->os_errno = e.os_errno();
  std::snprintf(err->message, sizeof(err->message), "%s", e.message().c_str());
}

inline int fail(qtx_error* err, const Error& e) {
  fill(err, e);
  return c_code(e.kind());
}

inline int ok(qtx_error* err) {
  if (err != nullptr) {
    err->kind = QTX_OK;
    err->guest_code = 0;
    err->os_errno = 0;
    err->message[0] = '\0';
  }
  return QTX_OK;
}

inline char* dup_string(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p != nullptr) std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

inline std::chrono::milliseconds ms(std::uint32_t v) { return std::chrono::milliseconds(v); }

// Runs `fn`, turning an exception (allocation failure) into QTX_ERR_LOCAL.
template <class Fn>
int guarded(qtx_error* err, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return fail(err, Error(ErrorKind::kLocal, e.what()));
  }
}

}  // namespace qtx::host::c_api

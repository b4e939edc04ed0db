// What the C API's translation units share: turning Errors and exceptions
// into qtx_error and codes, strings into malloc'ed copies for the caller
// (released with qtx_free), and caller structs of any release into the
// library's own.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "error_table.h"
#include "qtx/host.h"
#include "qtx/host/agent.h"
#include "qtx/host/error.h"

namespace qtx::host::json {
class EnvelopeJson;
}

// The handles behind the C API's opaque types that more than one of its
// translation units reach into.
struct qtx_agent {
  std::shared_ptr<qtx::host::Agent> agent;
};

struct qtx_cancel {
  std::shared_ptr<qtx::host::CancelToken> token;
};

namespace qtx::host::c_api {

// One schema pool for every JSON conversion; lookups are thread-safe.
json::EnvelopeJson& json_codec();

// A caller's qtx_transfer_options (NULL: the defaults) as the C++ API's.
struct TransferSetup {
  CallOptions call;
  TransferOptions transfer;
  std::uint32_t mode = 0;  // upload: the new file's mode
};
int read_transfer_options(const qtx_transfer_options* in, TransferSetup* out, qtx_error* err);

// CallOptions from a caller's deadline and token (may be NULL).
inline CallOptions call_options(std::uint32_t timeout_ms, const qtx_cancel* cancel) {
  CallOptions o;
  o.timeout = std::chrono::milliseconds(timeout_ms);
  if (cancel != nullptr) o.cancel = cancel->token;
  return o;
}

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

inline int succeed(qtx_error* err) {
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

// Fills *err without allocating: usable while an allocation failure is
// being reported.
inline int fail_raw(qtx_error* err, int kind, const char* prefix, const char* what) noexcept {
  if (err != nullptr) {
    err->kind = kind;
    err->guest_code = 0;
    err->os_errno = 0;
    std::snprintf(err->message, sizeof(err->message), "%s%s", prefix, what);
  }
  return kind;
}

// Every callback of the caller's runs through call_back, which marks the
// thread as inside one for as long as it runs. They all run on an I/O
// thread, so the handles' blocking functions refuse to run there
// (in_callback()): they would wait for the very thread they block.
inline thread_local int callback_depth = 0;
inline bool in_callback() { return callback_depth > 0; }
template <class Fn, class... Args>
void call_back(Fn fn, Args... args) {
  struct Depth {
    Depth() { ++callback_depth; }
    ~Depth() { --callback_depth; }
  } depth;
  fn(args...);
}

// Runs `fn` (returning a code); an exception becomes QTX_ERR_LOCAL in *err,
// "out of memory" for std::bad_alloc, "internal error: ..." for anything
// else. Every entry point that can throw runs inside one of these guards,
// and every entry point is noexcept, so nothing unwinds into C frames.
template <class Fn>
int guarded(qtx_error* err, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return fail_raw(err, QTX_ERR_LOCAL, "out of memory", "");
  } catch (const std::exception& e) {
    return fail_raw(err, QTX_ERR_LOCAL, "internal error: ", e.what());
  } catch (...) {
    return fail_raw(err, QTX_ERR_LOCAL, "internal error: ", "unknown exception");
  }
}

// The same for entry points without a qtx_error: an exception gives
// `fallback`.
template <class T, class Fn>
T guarded_or(T fallback, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (...) {
    return fallback;
  }
}

// Copies a caller's struct that begins with `size_t struct_size` into *out,
// whatever release of the header the caller was built with: fields beyond
// the caller's struct_size stay zero (their defaults); fields beyond the
// library's own struct (a newer header) must be zero, or the call is refused,
// since the library cannot honour what it does not know. `oldest` is the
// size of the struct's first release: struct_size below it (e.g. a struct
// zeroed without its init function) is refused.
template <class T>
int read_struct(const T* in, std::size_t oldest, const char* name, T* out, qtx_error* err) noexcept {
  static_assert(offsetof(T, struct_size) == 0, "struct_size comes first");
  std::memset(static_cast<void*>(out), 0, sizeof(T));
  const std::size_t size = in->struct_size;
  if (size < oldest) {
    char what[160];
    std::snprintf(what, sizeof(what), "%s.struct_size is %zu, below %zu: initialise it with %s_init()", name, size,
                  oldest, name);
    return fail_raw(err, QTX_ERR_INVALID_ARGUMENT, "", what);
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(in);
  for (std::size_t i = sizeof(T); i < size; ++i) {
    if (bytes[i] != 0) {
      char what[160];
      std::snprintf(what, sizeof(what), "%s has fields this library (%zu bytes) does not know set (byte %zu of %zu)",
                    name, sizeof(T), i, size);
      return fail_raw(err, QTX_ERR_UNSUPPORTED, "", what);
    }
  }
  std::memcpy(static_cast<void*>(out), in, size < sizeof(T) ? size : sizeof(T));
  return QTX_OK;
}

// The size of a struct's first release: the end of its last field then.
#define QTX_STRUCT_SIZE_UP_TO(T, last_field) (offsetof(T, last_field) + sizeof(static_cast<T*>(nullptr)->last_field))

}  // namespace qtx::host::c_api

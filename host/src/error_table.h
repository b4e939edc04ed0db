// ErrorKind's part of the error vocabulary (qtx/error_table.h has the part
// both sides share): each kind's stable name, C API code and retryability,
// and the kind a guest's answer with each wire code becomes. error_kind_name,
// Error::retryable, guest_error and the C API's codes read these tables;
// nothing else maps an ErrorKind to or from anything. The static_asserts
// below fail the build when ErrorKind, qtx_error_kind, the generated
// qtx.agent.v1.ErrorCode and these tables disagree.
#pragma once

#include <cstddef>

#include "qtx/agent/v1/error.pb.h"
#include "qtx/error_table.h"
#include "qtx/host.h"
#include "qtx/host/error.h"

namespace qtx::host::detail {

struct KindRow {
  ErrorKind kind;
  const char* name;  // stable: JSON output, the C API, docs/host.md section 4
  int c_code;        // qtx_error_kind
  bool retryable;    // the same call may succeed later unchanged
};

// Indexed by ErrorKind - 1 (the kinds start at 1; 0 is QTX_OK in C). A new
// kind goes last, in ErrorKind, in qtx_error_kind and here.
inline constexpr KindRow kKinds[] = {
    {ErrorKind::kDisconnected, "disconnected", QTX_ERR_DISCONNECTED, true},
    {ErrorKind::kTimeout, "timeout", QTX_ERR_TIMEOUT, true},
    {ErrorKind::kCancelled, "cancelled", QTX_ERR_CANCELLED, false},
    {ErrorKind::kDenied, "denied", QTX_ERR_DENIED, false},
    {ErrorKind::kUnsupported, "unsupported", QTX_ERR_UNSUPPORTED, false},
    {ErrorKind::kInvalidArgument, "invalid_argument", QTX_ERR_INVALID_ARGUMENT, false},
    {ErrorKind::kNotFound, "not_found", QTX_ERR_NOT_FOUND, false},
    {ErrorKind::kAlreadyExists, "already_exists", QTX_ERR_ALREADY_EXISTS, false},
    {ErrorKind::kBusy, "busy", QTX_ERR_BUSY, true},
    {ErrorKind::kFailedPrecondition, "failed_precondition", QTX_ERR_FAILED_PRECONDITION, false},
    {ErrorKind::kGuestFailed, "guest_failed", QTX_ERR_GUEST_FAILED, false},
    {ErrorKind::kProtocol, "protocol", QTX_ERR_PROTOCOL, false},
    {ErrorKind::kLocal, "local", QTX_ERR_LOCAL, false},
    {ErrorKind::kClosed, "closed", QTX_ERR_CLOSED, false},
};
inline constexpr std::size_t kKindCount = sizeof(kKinds) / sizeof(kKinds[0]);

// The row of `kind`, or null for a value outside the enum.
constexpr const KindRow* kind_row(ErrorKind kind) {
  const auto i = static_cast<std::size_t>(kind) - 1;  // kind 0 wraps to a huge index
  return i < kKindCount ? &kKinds[i] : nullptr;
}

// The row whose C code is `c_code`, or null (QTX_OK, unknown numbers).
constexpr const KindRow* kind_row_of_c_code(int c_code) {
  for (const KindRow& row : kKinds) {
    if (row.c_code == c_code) return &row;
  }
  return nullptr;
}

// Indexed by wire code: what a guest's error answer with it becomes. The
// guest's failures that say nothing about what the caller should do (an
// I/O error, an internal error, no code) are kGuestFailed, with the
// number kept in Error::guest_code.
inline constexpr ErrorKind kKindOfWireCode[] = {
    ErrorKind::kGuestFailed,         // ERROR_CODE_UNSPECIFIED
    ErrorKind::kUnsupported,         // ERROR_CODE_UNSUPPORTED
    ErrorKind::kDenied,              // ERROR_CODE_DENIED
    ErrorKind::kInvalidArgument,     // ERROR_CODE_INVALID_ARGUMENT
    ErrorKind::kNotFound,            // ERROR_CODE_NOT_FOUND
    ErrorKind::kBusy,                // ERROR_CODE_BUSY
    ErrorKind::kTimeout,             // ERROR_CODE_TIMEOUT
    ErrorKind::kGuestFailed,         // ERROR_CODE_INTERNAL
    ErrorKind::kAlreadyExists,       // ERROR_CODE_ALREADY_EXISTS
    ErrorKind::kGuestFailed,         // ERROR_CODE_IO
    ErrorKind::kCancelled,           // ERROR_CODE_CANCELLED
    ErrorKind::kFailedPrecondition,  // ERROR_CODE_FAILED_PRECONDITION
};

// The kind of a guest's error answer with wire code `wire`. A number this
// build does not know (a newer agent) is kGuestFailed, as is UNSPECIFIED.
constexpr ErrorKind kind_from_wire(int wire) {
  return wire >= 0 && wire < wire_code::kCount ? kKindOfWireCode[wire] : ErrorKind::kGuestFailed;
}

// --- checks -----------------------------------------------------------------------

namespace error_table_checks {

namespace v1 = ::qtx::agent::v1;

constexpr bool kinds_in_enum_order() {
  for (std::size_t i = 0; i < kKindCount; ++i) {
    if (static_cast<std::size_t>(kKinds[i].kind) != i + 1) return false;
  }
  return true;
}

// The C enum and the C++ enum agree for every kind, not only the last.
constexpr bool c_codes_match() {
  for (const KindRow& row : kKinds) {
    if (row.c_code != static_cast<int>(row.kind)) return false;
  }
  return true;
}

constexpr bool str_eq(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) ++a, ++b;
  return *a == *b;
}

// A wire code the host does not fold into kGuestFailed keeps its meaning:
// its kind has the name of its Status::Code.
constexpr bool wire_kinds_keep_meaning() {
  for (int w = 0; w < wire_code::kCount; ++w) {
    const ErrorKind kind = kKindOfWireCode[w];
    if (kind == ErrorKind::kGuestFailed) continue;
    if (!str_eq(kind_row(kind)->name, error_code_row(code_from_wire(w))->name)) return false;
  }
  return true;
}

static_assert(kKindCount == static_cast<std::size_t>(ErrorKind::kClosed),
              "one row per ErrorKind: a new kind needs a row (and this check names the last kind)");
static_assert(kinds_in_enum_order(), "kKinds rows must follow ErrorKind order");
static_assert(c_codes_match(), "qtx_error_kind and ErrorKind must agree for every kind");
static_assert(QTX_ERR_CLOSED == static_cast<int>(kKindCount), "qtx_error_kind must end with the last kind");

// The wire numbers of qtx/error_table.h are the generated enum's.
static_assert(v1::ErrorCode_ARRAYSIZE == wire_code::kCount, "error.proto and qtx/error_table.h disagree");
static_assert(sizeof(kKindOfWireCode) / sizeof(kKindOfWireCode[0]) == wire_code::kCount, "one kind per wire code");
static_assert(v1::ERROR_CODE_UNSPECIFIED == wire_code::kUnspecified);
static_assert(v1::ERROR_CODE_UNSUPPORTED == wire_code::kUnsupported);
static_assert(v1::ERROR_CODE_DENIED == wire_code::kDenied);
static_assert(v1::ERROR_CODE_INVALID_ARGUMENT == wire_code::kInvalidArgument);
static_assert(v1::ERROR_CODE_NOT_FOUND == wire_code::kNotFound);
static_assert(v1::ERROR_CODE_BUSY == wire_code::kBusy);
static_assert(v1::ERROR_CODE_TIMEOUT == wire_code::kTimeout);
static_assert(v1::ERROR_CODE_INTERNAL == wire_code::kInternal);
static_assert(v1::ERROR_CODE_ALREADY_EXISTS == wire_code::kAlreadyExists);
static_assert(v1::ERROR_CODE_IO == wire_code::kIo);
static_assert(v1::ERROR_CODE_CANCELLED == wire_code::kCancelled);
static_assert(v1::ERROR_CODE_FAILED_PRECONDITION == wire_code::kFailedPrecondition);
static_assert(wire_kinds_keep_meaning(), "a wire code's ErrorKind must carry the name of its Status::Code");

}  // namespace error_table_checks

}  // namespace qtx::host::detail

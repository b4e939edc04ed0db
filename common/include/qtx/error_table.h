// The error vocabulary both sides share: one row per Status::Code, with its
// stable name and the qtx.agent.v1.ErrorCode that carries it on the wire.
// Status names and every conversion between a Status::Code and a wire code
// read this table; nothing else maps one to the other. The host library's
// ErrorKind (and the C API's codes) are tied to the wire codes in
// host/src/error_table.h.
//
// The wire numbers are spelled out in wire_code below so that this header
// needs no generated code (qtx_wire links no protobuf); host/src/error_table.h
// and tests/unit/wire/error_table_test.cc check them against the generated
// enum with static_asserts, so the build fails when error.proto and this
// header disagree.
#pragma once

#include <cstddef>

#include "qtx/status.h"

namespace qtx {

// qtx.agent.v1.ErrorCode (proto/qtx/agent/v1/error.proto), by number.
namespace wire_code {
inline constexpr int kUnspecified = 0;
inline constexpr int kUnsupported = 1;
inline constexpr int kDenied = 2;
inline constexpr int kInvalidArgument = 3;
inline constexpr int kNotFound = 4;
inline constexpr int kBusy = 5;
inline constexpr int kTimeout = 6;
inline constexpr int kInternal = 7;
inline constexpr int kAlreadyExists = 8;
inline constexpr int kIo = 9;
inline constexpr int kCancelled = 10;
inline constexpr int kFailedPrecondition = 11;
inline constexpr int kCount = 12;  // one past the last: the numbers this build knows are [0, kCount)
inline constexpr int kNone = -1;   // in ErrorCodeRow::wire: never crosses the wire
}  // namespace wire_code

struct ErrorCodeRow {
  Status::Code code;
  const char* name;  // stable: used in messages and JSON
  int wire;          // the wire code, or wire_code::kNone for codes only one side uses
};

// Indexed by Status::Code. A new code goes last, in the enum and here.
inline constexpr ErrorCodeRow kErrorCodes[] = {
    {Status::Code::kOk, "ok", wire_code::kNone},
    {Status::Code::kInvalidArgument, "invalid_argument", wire_code::kInvalidArgument},
    {Status::Code::kNotFound, "not_found", wire_code::kNotFound},
    {Status::Code::kAlreadyExists, "already_exists", wire_code::kAlreadyExists},
    {Status::Code::kDenied, "denied", wire_code::kDenied},
    {Status::Code::kUnsupported, "unsupported", wire_code::kUnsupported},
    {Status::Code::kBusy, "busy", wire_code::kBusy},
    {Status::Code::kTimeout, "timeout", wire_code::kTimeout},
    {Status::Code::kDisconnected, "disconnected", wire_code::kNone},  // the channel itself: never an answer
    {Status::Code::kCancelled, "cancelled", wire_code::kCancelled},
    {Status::Code::kIoError, "io_error", wire_code::kIo},
    {Status::Code::kProtocol, "protocol", wire_code::kNone},  // judged by the receiver, never sent
    {Status::Code::kInternal, "internal", wire_code::kInternal},
    {Status::Code::kFailedPrecondition, "failed_precondition", wire_code::kFailedPrecondition},
};
inline constexpr std::size_t kErrorCodeCount = sizeof(kErrorCodes) / sizeof(kErrorCodes[0]);

// The row of `code`, or null for a value outside the enum.
constexpr const ErrorCodeRow* error_code_row(Status::Code code) {
  const auto i = static_cast<std::size_t>(code);
  return i < kErrorCodeCount ? &kErrorCodes[i] : nullptr;
}

// The Status::Code a wire code stands for. ERROR_CODE_UNSPECIFIED (a peer
// that set no code) and numbers this build does not know (a newer peer)
// are kInternal: the failure is real but says nothing more; callers keep
// the number itself for the message.
constexpr Status::Code code_from_wire(int wire) {
  for (const ErrorCodeRow& row : kErrorCodes) {
    if (wire > wire_code::kUnspecified && row.wire == wire) return row.code;
  }
  return Status::Code::kInternal;
}

// --- the table's own consistency, checked at compile time ------------------------

namespace error_table_detail {

constexpr bool rows_in_enum_order() {
  for (std::size_t i = 0; i < kErrorCodeCount; ++i) {
    if (static_cast<std::size_t>(kErrorCodes[i].code) != i) return false;
  }
  return true;
}

// Every wire code but UNSPECIFIED belongs to exactly one row, and every row
// that names a wire code names a known one: a bijection between the codes
// that cross the wire and the wire codes.
constexpr bool wire_codes_bijective() {
  for (int w = 0; w < wire_code::kCount; ++w) {
    int rows = 0;
    for (const ErrorCodeRow& row : kErrorCodes) rows += row.wire == w ? 1 : 0;
    if (rows != (w == wire_code::kUnspecified ? 0 : 1)) return false;
  }
  for (const ErrorCodeRow& row : kErrorCodes) {
    if (row.wire != wire_code::kNone && (row.wire <= wire_code::kUnspecified || row.wire >= wire_code::kCount)) {
      return false;
    }
  }
  return true;
}

}  // namespace error_table_detail

static_assert(kErrorCodeCount == static_cast<std::size_t>(Status::Code::kFailedPrecondition) + 1,
              "one row per Status::Code: a new code needs a row (and this check names the last code)");
static_assert(error_table_detail::rows_in_enum_order(), "kErrorCodes rows must follow Status::Code order");
static_assert(error_table_detail::wire_codes_bijective(),
              "each wire code but UNSPECIFIED must belong to exactly one Status::Code");

}  // namespace qtx

// Errors as values. Every failure of libqtx-host is an Error whose kind tells
// the caller what to do next (after kj's exception kinds); the message is for
// humans and is never parsed.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "qtx/host/export.h"

namespace qtx::host {

// Each kind's name, C code (qtx_error_kind, the same number) and the wire
// codes that become it are one table, host/src/error_table.h. New kinds go
// last, with their row there.
enum class ErrorKind : int {
  kDisconnected = 1,    // no ready connection, or it dropped: retry once the agent is ready again
  kTimeout,             // the deadline passed; the guest may still have acted
  kCancelled,           // the caller cancelled the call
  kDenied,              // the guest's policy forbids it: do not retry
  kUnsupported,         // this agent does not implement it
  kInvalidArgument,     // the request is wrong: fix it, do not retry as is
  kNotFound,            // the path, user or process does not exist in the guest
  kAlreadyExists,       // refusing to overwrite, or the socket already has an owner
  kBusy,                // a limit in the guest is reached: back off and retry
  kFailedPrecondition,  // the guest is not in a state for it (e.g. already frozen)
  kGuestFailed,         // it failed inside the guest (I/O, internal, or an error code this
                        // library does not know, from a newer agent): see guest_code, message, os_errno
  kProtocol,            // the agent sent what this library does not accept (incl. checksum mismatch)
  kLocal,               // a failure on this side (a local file, a socket path, a bad option)
  kClosed,              // the agent handle or its manager was closed
};

// "disconnected", "timeout", ... (stable: used in JSON output and by the C API).
QTX_HOST_API const char* error_kind_name(ErrorKind kind);

class QTX_HOST_API Error {
 public:
  Error(ErrorKind kind, std::string message, int guest_code = 0, int os_errno = 0)
      : kind_(kind), message_(std::move(message)), guest_code_(guest_code), os_errno_(os_errno) {}

  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  // The qtx.agent.v1.ErrorCode the agent answered with (0 when the error is local).
  int guest_code() const { return guest_code_; }
  // The errno behind it, in the guest (guest_code set) or here (kLocal), or 0.
  int os_errno() const { return os_errno_; }
  // True for kinds where the same call may succeed later unchanged:
  // disconnected, timeout, busy.
  bool retryable() const;
  // "<kind>: <message>".
  std::string to_string() const;

 private:
  ErrorKind kind_;
  std::string message_;
  int guest_code_;
  int os_errno_;
};

// A value or an Error.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_{ErrorKind::kLocal, ""};
  bool ok_ = true;
};

}  // namespace qtx::host

// Status: the result of an operation that can fail, cheap when it succeeds.
// A failed Status carries a Code that tells the caller what to do and a
// message for humans. Modeled on leveldb::Status.
//
// Naming, as in leveldb and as qtx::host::Result: Status::OK() makes a
// success; ok() asks whether a Status is one (explicit operator bool says
// the same, for `if (!s) return s;`). Nothing else is called ok.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace qtx {

class Status {
 public:
  // Each qtx.agent.v1.ErrorCode (but UNSPECIFIED) has exactly one Code, and
  // back; kOk, kDisconnected and kProtocol never cross the wire. The table
  // is qtx/error_table.h: its static_asserts fail the build when it misses a
  // code. New codes go last, with their row.
  enum class Code : int {
    kOk = 0,
    kInvalidArgument,     // the caller's input is wrong: fix it, do not retry
    kNotFound,            // the thing named does not exist
    kAlreadyExists,       // refusing to overwrite
    kDenied,              // policy forbids it: do not retry
    kUnsupported,         // the peer does not implement it
    kBusy,                // a limit is reached: back off and retry
    kTimeout,             // the deadline passed; the outcome may be unknown
    kDisconnected,        // the channel went away: retry after reconnect
    kCancelled,           // the caller cancelled it
    kIoError,             // an operating-system call failed
    kProtocol,            // the peer broke the protocol
    kInternal,            // a bug: report it
    kFailedPrecondition,  // not in a state for it (e.g. already frozen): do not retry as is
  };

  Status() noexcept = default;  // OK

  static Status OK() { return Status(); }
  static Status error(Code code, std::string_view message) { return Status(code, message); }
  static Status invalid_argument(std::string_view m) { return Status(Code::kInvalidArgument, m); }
  static Status not_found(std::string_view m) { return Status(Code::kNotFound, m); }
  static Status io_error(std::string_view m) { return Status(Code::kIoError, m); }
  static Status internal(std::string_view m) { return Status(Code::kInternal, m); }

  bool ok() const { return rep_ == nullptr; }
  explicit operator bool() const { return ok(); }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  const std::string& message() const;

  // "invalid argument: <message>", or "ok".
  std::string to_string() const;

 private:
  struct Rep {
    Code code;
    std::string message;
  };
  Status(Code code, std::string_view message) : rep_(std::make_shared<const Rep>(Rep{code, std::string(message)})) {}

  std::shared_ptr<const Rep> rep_;  // null when OK; immutable, so sharing is safe
};

// Lower-case name of a code: "invalid_argument", "timeout", ...
const char* code_name(Status::Code code);

}  // namespace qtx

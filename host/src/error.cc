#include "qtx/host/agent.h"
#include "qtx/host/error.h"

namespace qtx::host {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kDisconnected: return "disconnected";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kCancelled: return "cancelled";
    case ErrorKind::kDenied: return "denied";
    case ErrorKind::kUnsupported: return "unsupported";
    case ErrorKind::kInvalidArgument: return "invalid_argument";
    case ErrorKind::kNotFound: return "not_found";
    case ErrorKind::kAlreadyExists: return "already_exists";
    case ErrorKind::kBusy: return "busy";
    case ErrorKind::kFailedPrecondition: return "failed_precondition";
    case ErrorKind::kGuestFailed: return "guest_failed";
    case ErrorKind::kProtocol: return "protocol";
    case ErrorKind::kLocal: return "local";
    case ErrorKind::kClosed: return "closed";
  }
  return "unknown";
}

bool Error::retryable() const {
  return kind_ == ErrorKind::kDisconnected || kind_ == ErrorKind::kTimeout || kind_ == ErrorKind::kBusy;
}

std::string Error::to_string() const { return std::string(error_kind_name(kind_)) + ": " + message_; }

const char* state_name(State state) {
  switch (state) {
    case State::kDisconnected: return "disconnected";
    case State::kConnecting: return "connecting";
    case State::kHandshaking: return "handshaking";
    case State::kReady: return "ready";
    case State::kClosed: return "closed";
  }
  return "unknown";
}

}  // namespace qtx::host

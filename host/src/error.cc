#include "qtx/host/error.h"
#include "error_table.h"
#include "qtx/host/agent.h"

namespace qtx::host {

const char* error_kind_name(ErrorKind kind) {
  const detail::KindRow* row = detail::kind_row(kind);
  return row ? row->name : "unknown";
}

bool Error::retryable() const {
  const detail::KindRow* row = detail::kind_row(kind_);
  return row != nullptr && row->retryable;
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

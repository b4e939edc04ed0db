// Operation: a request that outlives its dispatch - a streamed exec, a file
// transfer. The session keeps it by request id, routes the host's Progress,
// Credit and Cancel messages to it, and cancels it when the session ends.
// All calls happen on the io thread.
#pragma once

#include <cstdint>

#include "qtx/agent/v1/envelope.pb.h"

namespace qtx::agent {

class Operation {
 public:
  virtual ~Operation() = default;
  // Host -> agent stream data (exec stdin, file chunks of a write).
  virtual void on_progress(const ::qtx::agent::v1::Progress& progress) = 0;
  // The host granted `bytes` more of the stream this operation sends.
  virtual void on_credit(std::uint64_t bytes) = 0;
  // The host cancelled it, or the session is ending. The operation answers
  // ERROR_CODE_CANCELLED (if it can still be sent) and releases its
  // resources; it must not call back into the session's operation table
  // synchronously.
  virtual void cancel() = 0;
  // The outbox has room again (streams pause while it is over its limit).
  virtual void on_outbox_room() {}
};

}  // namespace qtx::agent

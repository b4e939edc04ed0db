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
  // ERROR_CODE_CANCELLED (now or after its cleanup) and releases its
  // resources. Its id stays taken until that answer, so a host reusing the
  // id early gets "already in use" rather than a mixed-up stream.
  virtual void cancel() = 0;
  // The outbox has room again (streams pause while it is over its limit).
  virtual void on_outbox_room() {}
};

}  // namespace qtx::agent

#include <memory>
#include <vector>

namespace qtx::agent {

class Session;

// Stands in for an operation while it is being set up on a worker (spawn,
// open): the host may already send Credit, Progress or Cancel for its id.
// Credit and Progress are kept and replayed into the real operation; Cancel
// answers CANCELLED at once, and the setup then undoes itself. What is kept
// is bounded by the credit the host may use before the operation starts
// (`window`: the implicit stdin window of an exec, the window of a file
// write, 0 when the host sends no data): beyond `window` plus kSlack bytes
// (each message counted with its encoding and kPerMessage more, so a flood
// of tiny messages is bounded too) the request fails, nothing more is kept.
class PendingOperation : public Operation {
 public:
  static constexpr std::size_t kSlack = 64 * 1024;
  static constexpr std::size_t kPerMessage = 64;

  PendingOperation(std::weak_ptr<Session> session, std::uint64_t id, std::uint64_t window)
      : session_(std::move(session)), id_(id), max_buffered_(window + kSlack) {}

  void on_progress(const ::qtx::agent::v1::Progress& progress) override;
  void on_credit(std::uint64_t bytes) override { credit_ += bytes; }
  void cancel() override;

  // True when the host cancelled (and was answered) or sent too much.
  bool cancelled() const { return cancelled_; }
  // Replays the buffered Credit and Progress into `real`.
  void hand_over(Operation& real);

 private:
  std::weak_ptr<Session> session_;
  std::uint64_t id_;
  std::uint64_t max_buffered_;
  std::uint64_t credit_ = 0;
  std::vector<::qtx::agent::v1::Progress> progress_;
  std::uint64_t buffered_ = 0;
  bool cancelled_ = false;
};

}  // namespace qtx::agent

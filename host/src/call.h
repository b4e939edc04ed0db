// Call: one request in flight on a Link, from the request frame to its one
// final outcome.
//
// The Link owns every Call in its table and is the only one that removes
// it: after on_response() (the call has then delivered its outcome itself)
// or through fail(). A Call never removes itself; a method that finds the
// call must end (a bad stream, a local sink error) returns that Error and
// the Link ends the call: it tells the agent to stop (Cancel) and calls
// fail(). Every method runs on the I/O thread.
#pragma once

#include <cstdint>
#include <optional>

#include "qtx/agent/v1/envelope.pb.h"
#include "qtx/host/error.h"

namespace qtx::host::detail {

class Link;

class Call {
 public:
  virtual ~Call() = default;

  // The request to send; called once, when the call is admitted.
  virtual void fill_request(agent::v1::Request* request) = 0;
  // Right after the request was queued (uploads may start sending here).
  virtual std::optional<Error> on_started(Link&, std::uint64_t /*id*/) { return std::nullopt; }
  // Streamed parts and flow control for this call.
  virtual std::optional<Error> on_progress(Link&, std::uint64_t id, const agent::v1::Progress& progress);
  virtual std::optional<Error> on_credit(Link&, std::uint64_t /*id*/, std::uint64_t /*bytes*/) { return std::nullopt; }
  // The Link's outbox drained below its low-water mark (see Link::stream_room).
  virtual std::optional<Error> on_outbox_room(Link&, std::uint64_t /*id*/) { return std::nullopt; }
  // Agent::resume: a source that was pending may have data now.
  virtual std::optional<Error> on_resume(Link&, std::uint64_t /*id*/) { return std::nullopt; }
  // Agent::grant: the consumer of a paced call took `bytes` more.
  virtual std::optional<Error> on_grant(Link&, std::uint64_t /*id*/, std::uint64_t /*bytes*/) { return std::nullopt; }
  // The final answer; delivers the outcome (a guest error included).
  virtual void on_response(agent::v1::Response& response) = 0;
  // The call ends without an answer.
  virtual void fail(Error error) = 0;
};

// The Error for a Response carrying agent::v1::Error. Its message is the
// guest's, escaped by qtx::printable and cut to kMaxGuestMessage bytes.
inline constexpr std::size_t kMaxGuestMessage = 1024;
Error guest_error(const agent::v1::Error& error);

}  // namespace qtx::host::detail

// Session: one connection to the host, from handshake to the first failure.
//
// Actors (all on the io thread; every handler checks stopped_ first):
//   reader     async_read_some -> FrameDecoder -> dispatch. Paused while the
//              outbox is over its limit: requests are not read faster than
//              their answers can leave.
//   stall      an idle timer armed while the decoder holds a partial frame
//              and a read is pending; when it fires the decoder flushes
//              (docs/wire-format.md, rule 5). It never runs while reading is
//              paused: our own backpressure is not the host going quiet.
//   writer     a bounded outbox of whole frames, written in gathered batches;
//              every batch has a deadline, and a missed deadline ends the
//              session (the host stopped reading).
//   telemetry  after the handshake, a sample every interval, collected on a
//              worker; dropped (and counted) when the outbox is full.
//   operations streamed requests by id (exec, file transfers), cancelled when
//              the session ends.
// The first failure of any actor calls stop(), which cancels all of them and
// reports why through the end handler: no actor can die while the rest run on.
#pragma once

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent_context.h"
#include "operation.h"
#include "qtx/agent/v1/envelope.pb.h"
#include "qtx/wire/decoder.h"

namespace qtx::agent {

class Session : public std::enable_shared_from_this<Session>, private wire::FrameDecoder::Handler {
 public:
  enum class End {
    kHostClosed,  // the host went away: end of file, reset, broken pipe
    kReadError,
    kWriteTimeout,  // the host stopped reading
    kWriteError,
    kOutboxOverflow,  // answers piled up beyond the hard limit
    kShutdown,        // the agent is stopping
  };
  struct Outcome {
    End end;
    std::string detail;
    bool handshaken;  // a hello was answered in this session
    std::uint64_t bytes_in;
  };
  using EndHandler = std::function<void(const Outcome&)>;

  // Takes ownership of `fd`. `on_end` is posted once, after stop().
  Session(AgentContext& agent, int fd, EndHandler on_end);
  ~Session() override;

  // The session's validator after the seal and the parse: a request with
  // id 0 is refused, since no answer to it could be told from an event. A
  // refused frame is not dispatched; the decoder drops it whole as
  // bad_payload, so it is counted in bytes_dropped, not frames_received.
  static bool acceptable(const v1::Envelope& env) { return !(env.has_request() && env.id() == 0); }

  void start();
  // Ends the session now. Idempotent.
  void stop(End why, std::string detail);
  // SIGTERM: stops reading, cancels operations, lets their answers and the
  // outbox drain for up to `deadline_ms`, then stop(kShutdown).
  void drain_and_stop(unsigned deadline_ms);

  // --- for handlers and operations (io thread only) -------------------------
  AgentContext& agent() { return agent_; }
  bool stopped() const { return stopped_; }
  std::weak_ptr<Session> weak() { return weak_from_this(); }

  // Sends the final response to request `id` and forgets its operation.
  void respond(std::uint64_t id, v1::Response response);
  // Answers a request refused because its id belongs to a running
  // operation: that operation keeps the id (and its credit, stdin, cancel).
  void refuse_duplicate(std::uint64_t id, v1::Response response);
  // Queues a message that must arrive (responses, stream data).
  void send(v1::Envelope& env);
  // Queues a message that may be dropped when the outbox is full (telemetry).
  bool send_droppable(v1::Envelope& env);
  // Streams send only while this holds; otherwise they wait for on_outbox_room.
  bool stream_may_send() const { return outbox_bytes_ < stream_limit_; }
  // For stream data produced off the io thread (file read chunks): reserves
  // `bytes` of the stream room before the work starts, so the outbox plus
  // every reservation stays within the stream limit, or exceeds it by one
  // reservation made while nothing else was reserved. False: wait for
  // on_outbox_room. The reservation is released just before its data is
  // queued (or given up); waiting streams are then told of the room.
  bool reserve_stream(std::size_t bytes);
  void release_stream(std::size_t bytes);

  // Runs `fn` on the io thread once everything queued so far has been
  // written, or the session ended (power commands answer before acting).
  void after_flush(std::function<void()> fn);

  void add_operation(std::uint64_t id, std::shared_ptr<Operation> op);
  bool has_operation(std::uint64_t id) const { return ops_.count(id) != 0; }
  std::size_t operation_count() const { return ops_.size(); }

  // Telemetry: restart the timer with the agent's current interval; sample now.
  void reschedule_telemetry();
  void sample_telemetry_now();

  void mark_handshaken();
  // What the decoder has accepted and dropped so far on this session.
  const wire::FrameDecoder::Stats& decoder_stats() const { return decoder_.stats(); }

 private:
  void send_response(std::uint64_t id, v1::Response response);
  bool on_frame(std::string_view payload, std::uint64_t offset) override;
  void on_drop(const wire::Drop& drop) override;

  void do_read();
  void arm_stall_timer();
  void disarm_stall_timer();
  void enqueue(std::string frame);
  void write_next();
  void after_write();
  void dispatch(v1::Envelope& env);
  void telemetry_tick();
  void notify_stream_room();
  void collect_telemetry();

  AgentContext& agent_;
  asio::posix::stream_descriptor port_;
  EndHandler on_end_;
  wire::FrameDecoder decoder_;
  std::unique_ptr<char[]> read_buf_;
  v1::Envelope inbound_;  // reused for every frame

  asio::steady_timer stall_timer_;
  asio::steady_timer write_timer_;
  asio::steady_timer telemetry_timer_;
  asio::steady_timer drain_timer_;

  std::deque<std::string> outbox_;
  std::size_t outbox_bytes_ = 0;
  std::size_t writing_frames_ = 0;  // frames at the head of outbox_ being written
  std::vector<asio::const_buffer> write_batch_;
  const std::size_t soft_limit_;    // reading pauses, telemetry drops
  const std::size_t stream_limit_;  // streams pause (leaves room for answers and telemetry)
  const std::size_t hard_limit_;    // the session ends

  std::size_t stream_reserved_ = 0;  // see reserve_stream
  bool stream_waiting_ = false;      // a reservation was refused since the last notice

  std::unordered_map<std::uint64_t, std::shared_ptr<Operation>> ops_;
  std::vector<std::function<void()>> after_flush_;

  bool stopped_ = false;
  std::atomic<bool> ended_{false};  // stopped_, readable by worker jobs
  bool reading_ = false;
  bool draining_ = false;
  bool handshaken_ = false;
  bool collecting_ = false;
  bool sample_again_ = false;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t stall_generation_ = 0;  // see arm_stall_timer
  std::uint64_t telemetry_dropped_since_sent_ = 0;
};

}  // namespace qtx::agent

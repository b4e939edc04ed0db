// Link: the one connection of an Agent to its channel, and every call on it.
//
// Actors (all on the I/O thread; every handler first checks that its epoch
// is still the current one and the link is not closed):
//   opener     connect to QEMU's socket, or accept QEMU on ours, or adopt a
//              socket once; failures back off (reconnect_min .. max).
//   reader     waits for readability, reads into the IoThread's shared
//              buffer and feeds the FrameDecoder; never paused.
//   stall      armed while the decoder holds a partial frame; flushes it
//              when no byte arrived for stall_timeout (wire format, rule 5).
//   handshake  a hello with a fresh nonce on every connection; frames
//              before the matching answer are discarded and counted; no
//              answer within handshake_timeout ends the connection.
//   keepalive  a ping after keepalive_interval of silence; silence for
//              keepalive_timeout ends the connection.
//   writer     an outbox of whole frames written in gathered batches, each
//              with write_timeout; a missed deadline ends the connection.
//   calls      the table of calls in flight, each with an optional
//              deadline timer.
// The end of a connection (drop()) cancels every actor, resets the decoder,
// fails every call with kDisconnected and schedules the next connection: a
// new epoch. close() is final: calls fail with kClosed.
//
// Thread-safety: submit(), cancel(), close() and the snapshot accessors may
// be called from any thread; everything else is I/O-thread only.
//
// User code (AgentCallbacks, a call's completion callback, its stream
// callbacks, upload sources and download sinks) runs only through
// notify() and step(), and only once the Link has recorded the change it
// reports: a state change, the calls it ends and the next reconnect are
// all in place before on_state runs, so nothing user code does, throwing
// included, leaves the Link half-updated. An exception escaping user code
// is caught there, counted (AgentStats::callback_exceptions) and reported
// on stderr; one escaping a call's stream callback also ends that call
// with kLocal and tells the agent to stop it.
#pragma once

#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "call.h"
#include "io_thread.h"
#include "owner_lock.h"
#include "qtx/host/agent.h"
#include "qtx/wire/decoder.h"

namespace qtx::host::detail {

class Link : public std::enable_shared_from_this<Link>, private wire::FrameDecoder::Handler {
 public:
  Link(std::shared_ptr<IoThread> io, AgentOptions options, OwnerLock lock);
  ~Link() override;

  void start();
  void close();

  // Admits `call` on the I/O thread and returns its id at once. The call is
  // failed (kDisconnected when not ready, kClosed after close) if it cannot
  // be admitted; kCancelled when its token (options.cancel) has fired.
  // options.timeout 0: no deadline.
  CallId submit(std::unique_ptr<Call> call, const CallOptions& options);
  void cancel(CallId id);
  // Agent::resume and Agent::grant: run the call's on_resume / on_grant on
  // the I/O thread, if it is still in flight.
  void resume(CallId id);
  void grant(CallId id, std::uint64_t bytes);

  IoThread& io_thread() { return *io_; }
  // The public handle, for Manager::agents() (set once by the Manager).
  void set_handle(const std::shared_ptr<Agent>& agent) { handle_ = agent; }
  std::shared_ptr<Agent> handle() const { return handle_.lock(); }
  const std::string& name() const { return name_; }
  const Endpoint& endpoint() const { return options_.endpoint; }

  // --- snapshot (any thread) -------------------------------------------------
  State state() const;
  std::optional<v1::AgentIdentity> identity() const;
  std::optional<v1::TelemetrySample> latest_telemetry() const;
  std::optional<Error> last_error() const;
  AgentStats stats() const;
  // What the metrics read, copied under one lock (qtx/host/metrics.h).
  struct MetricsView {
    State state = State::kDisconnected;
    AgentStats stats;
    std::optional<v1::TelemetrySample> telemetry;
    std::chrono::steady_clock::time_point telemetry_at;  // when the sample arrived here
  };
  MetricsView metrics_view() const;
  const std::vector<std::pair<std::string, std::string>>& labels() const { return options_.labels; }
  Result<v1::AgentIdentity> wait_ready(std::chrono::milliseconds timeout);

  // --- for calls (I/O thread) ------------------------------------------------
  // Queues one envelope (its id set by the caller). False when it was not
  // queued: no connection, or larger than max_message.
  bool send(agent::v1::Envelope& env);
  // True while the outbox has room for stream data. When false, the call is
  // told through on_outbox_room() once it drains.
  bool stream_room(CallId id);
  // The largest data piece (ExecInput, FileChunk) whose envelope send()
  // accepts: max_message less wire::kMaxPieceOverhead.
  std::size_t max_piece() const;

  // For IoThread: call `id`'s deadline (`timeout` after it started) passed.
  void on_deadline(CallId id, std::chrono::milliseconds timeout);

 private:
  struct Entry {
    std::unique_ptr<Call> call;
    std::unique_ptr<Deadline> deadline;  // set while in flight with a timeout
    std::chrono::steady_clock::time_point started;
    bool keepalive = false;                             // the link's own ping: not counted as a call
    std::unique_ptr<CancelToken::Registration> cancel;  // while in flight
  };

  // Connection lifecycle.
  void open();
  void on_open(const asio::error_code& ec);
  void begin_handshake();
  void become_ready(const v1::HelloResponse& hello);
  void drop(const Error& cause);
  void schedule_reopen();
  // Records a state change (the snapshot, wait_ready's waiters); runs no user code.
  void record_state(State state, const Error* cause);
  // Tells on_state about it.
  void announce_state(State state, const Error* cause);
  void set_state(State state, const Error* cause) {
    record_state(state, cause);
    announce_state(state, cause);
  }

  // Reader, stall timer.
  void wait_readable();
  void on_readable(std::uint64_t epoch, const asio::error_code& ec);
  void arm_stall();
  // Copies the decoder's work counter into stats_ (the decoder is the I/O
  // thread's alone; stats() is read from any thread).
  void note_decoder_work();
  bool on_frame(std::string_view payload, std::uint64_t offset) override;
  void on_drop(const wire::Drop& drop) override;
  void dispatch(agent::v1::Envelope& env);

  // Writer.
  void write_some();
  // Hands the socket what it takes at once from the front of the outbox.
  void write_now();
  // Counts `bytes` (`frames` whole frames) as written and out of the outbox.
  void note_written(std::size_t bytes, std::size_t frames);
  // Tells the calls waiting for outbox room (stream_room()) that there is some.
  void wake_room_waiters();

  // Keepalive.
  void arm_keepalive();
  void on_keepalive(std::uint64_t epoch);

  // Calls.
  void admit(CallId id, std::unique_ptr<Call> call, std::chrono::milliseconds timeout, bool keepalive = false,
             CancelToken* token = nullptr);
  // Counts the end of a call in stats_: `outcome` 0 (answered) or an
  // ErrorKind; the round trip is recorded for answered calls.
  void note_call_end(const Entry& entry, int outcome, bool answered);
  // Ends call `id` with `error`; tells the agent to stop it when `tell_agent`.
  void end_call(CallId id, Error error, bool tell_agent);
  void check(CallId id, std::optional<Error> outcome);
  // Runs a step of call `id` that may run its stream callbacks; ends the
  // call when the step returns an Error or throws.
  template <class Fn>
  void step(CallId id, Fn&& fn);
  // Removes every call from the table (their deadlines cancelled), to be
  // failed by fail_calls() once the Link is consistent again.
  std::unordered_map<CallId, Entry> take_calls();
  void fail_calls(std::unordered_map<CallId, Entry>& calls, const Error& error);

  // User code.
  template <class Fn>
  void notify(const char* what, Fn&& fn) noexcept;
  void note_exception(const char* what, const char* why) noexcept;

  std::shared_ptr<IoThread> io_;
  const AgentOptions options_;
  const std::string name_;
  OwnerLock owner_lock_;
  std::weak_ptr<Agent> handle_;

  // I/O-thread state. Per connection, so kept small (docs/benchmarks.md,
  // "host scale"): the acceptor exists only for Endpoint::listen; one
  // timer serves the reopen backoff, the handshake deadline and the
  // keepalive, which are never armed at the same time (disconnected,
  // handshaking, ready); each handler checks its epoch and ignores an abort.
  asio::local::stream_protocol::socket socket_;
  std::unique_ptr<asio::local::stream_protocol::acceptor> acceptor_;
  asio::steady_timer phase_timer_, stall_timer_, write_timer_;
  wire::FrameDecoder decoder_;
  std::uint64_t epoch_ = 0;
  bool closed_ = false;
  bool adopted_used_ = false;
  std::chrono::milliseconds backoff_;
  std::uint64_t nonce_ = 0;
  std::uint64_t hello_id_ = 0;
  std::string last_instance_;
  // The identity of the last handshake, serialized: a few hundred bytes
  // where the parsed message with its capabilities takes kilobytes. Shared
  // with identity_ below (immutable once made).
  std::shared_ptr<const std::string> last_identity_;
  std::chrono::steady_clock::time_point last_rx_;
  bool ping_outstanding_ = false;
  std::chrono::steady_clock::time_point ping_sent_at_;
  bool stall_armed_ = false;
  std::uint64_t stall_mark_ = 0;  // bytes_in when the stall timer was armed
  // Whole frames waiting for the socket, oldest first. A vector, not a
  // deque: an empty deque still holds a 512-byte block per connection.
  std::vector<std::string> outbox_;
  std::size_t outbox_bytes_ = 0;
  std::size_t writing_frames_ = 0;
  std::vector<CallId> room_waiters_;
  std::unordered_map<CallId, Entry> calls_;
  std::atomic<CallId> next_id_{1};

  // Snapshot, guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable ready_cv_;
  State state_ = State::kDisconnected;
  std::shared_ptr<const std::string> identity_;  // serialized AgentIdentity; null until a handshake
  std::optional<v1::TelemetrySample> telemetry_;
  std::chrono::steady_clock::time_point telemetry_at_;
  std::optional<Error> last_error_;
  AgentStats stats_;
};

}  // namespace qtx::host::detail

// qtx::host::Agent: one VM's guest agent, seen through the single connection
// libqtx-host owns to its virtio-serial channel.
//
// Threads. A Manager runs one I/O thread for all its agents. Every method of
// Agent may be called from any thread. The asynchronous forms return at once
// and call their callback exactly once, on the I/O thread (on the caller's
// thread only once the Manager is gone: kClosed); so do the stream
// callbacks (exec output, transfer progress), upload sources, download
// sinks and AgentCallbacks. Callbacks must not block: a blocking method
// called from the I/O thread fails with kInvalidArgument instead of
// deadlocking. Once close() returns on another thread, no callback of this
// agent runs any more.
//
// Callbacks that throw. Callbacks should not throw, but one that does
// cannot corrupt the library: the agent records a change (its state,
// identity, telemetry, the calls a drop ends, the next reconnect) before
// any callback hears of it, and an exception escaping a callback is caught
// where the library called it, counted in AgentStats::callback_exceptions
// and reported on stderr. Then:
//   - AgentCallbacks, completion callbacks: nothing more; the agent, its
//     other calls and the other agents of the Manager carry on.
//   - a call's stream callbacks (ExecStreams::on_stdout/on_stderr,
//     TransferOptions::on_progress), its UploadSource or DownloadSink: the
//     call ends with kLocal (its completion callback says which threw) and
//     the agent is told to stop it, as when a sink returns an Error.
// A callback run at once on the calling thread (a call refused before it
// was queued, or made after the Manager is gone) throws into that caller.
//
// Lifecycle. The connection cycles disconnected -> connecting -> handshaking
// -> ready and back, reconnecting with backoff until close(). Every
// (re)connect starts with a hello carrying a fresh random nonce; everything
// received before the matching answer is discarded and counted. A call made
// while the agent is not ready fails at once with kDisconnected; when the
// connection drops, the state leaves kReady and then every call in flight
// fails at once with kDisconnected (so wait_ready() after such a failure
// waits for the next connection).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qtx/agent/v1/envelope.pb.h"
#include "qtx/host/error.h"
#include "qtx/host/export.h"

namespace qtx::host {

namespace v1 = ::qtx::agent::v1;

namespace detail {
class Link;
}

// How to reach the agent's channel.
struct Endpoint {
  enum class Kind {
    kConnect,  // connect to QEMU's chardev socket (server=on, the usual libvirt setup)
    kListen,   // listen on `path` and let QEMU connect (server=off)
    kAdopt,    // an already-connected stream socket; not reopened once it drops
  };
  Kind kind = Kind::kConnect;
  std::string path;
  int fd = -1;  // kAdopt: the library takes ownership

  static Endpoint connect(std::string path) { return {Kind::kConnect, std::move(path), -1}; }
  static Endpoint listen(std::string path) { return {Kind::kListen, std::move(path), -1}; }
  static Endpoint adopt(int fd) { return {Kind::kAdopt, {}, fd}; }
};

enum class State {
  kDisconnected,  // waiting to (re)connect
  kConnecting,    // connecting, or listening for QEMU
  kHandshaking,   // connected; hello sent, waiting for the matching answer
  kReady,         // calls may be made
  kClosed,        // close() was called; final
};
QTX_HOST_API const char* state_name(State state);

struct AgentCallbacks {
  // Every state change. `cause` is the failure that led to it (a dropped
  // connection, a refused connect, a handshake timeout), or null.
  std::function<void(State state, const Error* cause)> on_state;
  // The handshake found a different agent instance than the last one: the
  // agent restarted (or the guest rebooted: compare boot ids).
  std::function<void(const v1::AgentIdentity& now, const v1::AgentIdentity& before)> on_agent_restarted;
  // Pushed telemetry, as it arrives.
  std::function<void(const v1::TelemetrySample& sample)> on_telemetry;
  // Every event the agent pushes (telemetry included), for what has no
  // dedicated callback (freeze state changes, telemetry drops).
  std::function<void(const v1::Event& event)> on_event;
};

struct AgentOptions {
  Endpoint endpoint;
  std::string name;  // for messages and the `agent` metric label; default: the socket path
  // Extra labels on every metric of this agent (qtx/host/metrics.h), in
  // this order after `agent`. At most kMaxMetricLabels; each name matches
  // [a-zA-Z_][a-zA-Z0-9_]*, is not `agent`, a label the metrics use
  // themselves (see docs/metrics.md) or one starting with "__", and appears
  // once; each value is valid UTF-8 of at most kMaxMetricLabelValue bytes.
  // add() refuses anything else with kLocal.
  std::vector<std::pair<std::string, std::string>> labels;
  static constexpr std::size_t kMaxMetricLabels = 8;
  static constexpr std::size_t kMaxMetricLabelValue = 256;
  std::chrono::milliseconds handshake_timeout{5000};
  // After this much silence from the agent a ping is sent; after
  // keepalive_timeout of silence the connection is declared dead and
  // reopened. 0 disables keepalive.
  std::chrono::milliseconds keepalive_interval{5000};
  std::chrono::milliseconds keepalive_timeout{15000};
  // A write that has not completed after this long resets the connection
  // (the agent or QEMU stopped reading).
  std::chrono::milliseconds write_timeout{10000};
  // Reconnect backoff: doubles from min to max, back to min once ready.
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{5000};
  // A partial frame idle this long is flushed (docs/wire-format.md, rule 5).
  std::chrono::milliseconds stall_timeout{1000};
  std::uint32_t max_message = 16u * 1024 * 1024;
  std::string client_name = "libqtx-host";
  AgentCallbacks callbacks;
};

// A cancellation token, shared by the calls given it (CallOptions::cancel)
// and whoever may cancel them. fire() ends every one of them still in
// flight with kCancelled, the agent being told to stop each (an exec is
// killed, a transfer abandoned), and every call given the token later is
// refused with kCancelled. Any thread, callbacks included; idempotent.
class QTX_HOST_API CancelToken {
 public:
  static std::shared_ptr<CancelToken> create();
  ~CancelToken();
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  void fire();
  bool fired() const;

  // A call's registration, held by the library while the call is in flight:
  // its destruction unregisters `on_fire`.
  class Registration;
  // Registers `on_fire` to run (once, on the firing thread) when the token
  // fires; null when it has fired already (on_fire is then not kept).
  std::unique_ptr<Registration> add(std::function<void()> on_fire);

 private:
  CancelToken();
  struct State;
  std::shared_ptr<State> state_;
};

class QTX_HOST_API CancelToken::Registration {
 public:
  ~Registration();
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

 private:
  friend class CancelToken;
  Registration(std::shared_ptr<CancelToken::State> state, std::uint64_t key);
  std::shared_ptr<CancelToken::State> state_;
  std::uint64_t key_;
};

struct CallOptions {
  // The whole call, from now; 0: none. Streamed calls (exec, transfers)
  // default to none: keepalive still fails them when the agent goes silent.
  std::chrono::milliseconds timeout{30000};
  // Null: the call can be cancelled only with Agent::cancel(id).
  // (Default member initializers keep designated initializers such as
  // {.timeout = ...} free of missing-initializer warnings.)
  std::shared_ptr<CancelToken> cancel = nullptr;
};

// A call in flight, for cancel().
using CallId = std::uint64_t;

template <class T>
using Callback = std::function<void(Result<T>)>;

// A data source for uploads and streamed exec stdin: fills buf[0, n) and
// returns the bytes written, 0 at the end, or an Error (which cancels the
// call). Runs on the I/O thread, only when the agent has granted room.
// A source that has nothing yet (it is fed by another thread) returns
// kSourcePending instead of blocking: the call then sends nothing more until
// Agent::resume(id), after which the source is asked again.
using UploadSource = std::function<Result<std::size_t>(char* buf, std::size_t n)>;
inline constexpr std::size_t kSourcePending = static_cast<std::size_t>(-1);

// exec: output as it arrives, or collected into ExecOutcome when no stream
// callback is given. What is collected is bounded: a stream that would pass
// max_collected bytes ends the call with kLocal and cancels the command in
// the guest (a guest cannot make the host buffer without limit). Give a
// callback to receive more.
//
// With stdin_source the request's stdin_stream is set and the program's
// stdin is read from it (after the request's own `stdin` bytes) and sent
// within the agent's stdin credit: the source is asked for more only as the
// program consumes what the agent holds; its end closes the program's
// stdin. A program that never reads simply holds the source back.
//
// With paced_output the library gives the agent no output credit of its
// own accord: the caller does, with Agent::grant(id, bytes), for the bytes
// its consumer has taken. The agent then has at most one output window
// (ExecRequest::output_window) beyond what was granted in flight, so a
// consumer that stops reading holds the program back instead of making the
// host buffer. It needs the asynchronous form (for the CallId) and both
// stream callbacks; anything else is refused with kInvalidArgument.
struct ExecStreams {
  std::function<void(std::string_view data)> on_stdout;
  std::function<void(std::string_view data)> on_stderr;
  std::size_t max_collected = 64u * 1024 * 1024;  // per stream
  UploadSource stdin_source;
  bool paced_output = false;
};
struct ExecOutcome {
  v1::ExecResult result;
  std::string stdout_data;  // only when ExecStreams::on_stdout was empty
  std::string stderr_data;  // only when ExecStreams::on_stderr was empty
};

// File transfers. The data is pipelined within the agent's credit, and the
// sha256 of what was sent is compared with the agent's at the end: a
// mismatch fails the call with kProtocol. With verify_sha256 off neither
// side hashes (where the guest has no SHA instructions, hashing costs more
// than the port): every chunk is still checked by its frame's crc32c and its
// offset, and the byte counts are compared.
struct TransferProgress {
  std::uint64_t bytes = 0;
  std::uint64_t total = 0;  // 0 when unknown
};
struct TransferOptions {
  std::function<void(const TransferProgress&)> on_progress;
  // upload: bytes per chunk; a chunk whose message would pass max_message
  // is sent in pieces that fit.
  std::uint32_t chunk_size = 256 * 1024;
  std::uint64_t window = 8u * 1024 * 1024;  // download: bytes the agent may send ahead
  std::uint64_t expected_total = 0;         // download: the size, for progress, when known
  // download: the most bytes accepted (0: no limit). An agent sending more
  // fails the call with kLocal before the sink sees the excess, and the read
  // is cancelled in the guest: a guest cannot make the host store without
  // limit what it does not know the size of.
  std::uint64_t max_bytes = 0;
  bool verify_sha256 = true;  // false: sets the request's skip_sha256
  // download: credit goes back to the agent only through Agent::grant(id,
  // bytes), as with ExecStreams::paced_output; at most `window` bytes are
  // then in flight beyond what was granted. Asynchronous download() only;
  // download_file and download_bytes refuse it with kInvalidArgument.
  bool paced = false;
};
struct TransferResult {
  std::uint64_t bytes = 0;
  std::string sha256_hex;  // empty when the transfer skipped sha256
};
// Download sink: takes the next piece, or returns an Error to cancel.
using DownloadSink = std::function<Result<void>(std::string_view data)>;

// Counters since the Agent was added.
struct AgentStats {
  std::uint64_t connects = 0;          // connections that reached handshaking
  std::uint64_t handshakes = 0;        // that reached ready
  std::uint64_t restarts_seen = 0;     // handshakes that found a new instance id
  std::uint64_t discarded_frames = 0;  // valid frames before the matching hello answer
  std::uint64_t stray_frames = 0;      // frames for calls no longer in flight
  std::uint64_t dropped_bytes = 0;     // bytes the decoder dropped (garbage, stalls, resets)
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::uint64_t telemetry_samples = 0;
  // Bytes the decoder ran through crc32c to check seals. Whatever the guest
  // sends, at most 8 x bytes_in + 16 (docs/wire-format.md, section 2).
  std::uint64_t decoder_bytes_hashed = 0;

  // dropped_bytes by the decoder's reason (docs/wire-format.md): garbage,
  // bad_length, bad_payload, stalled, reset; they add up to dropped_bytes.
  std::array<std::uint64_t, 5> dropped_bytes_by_reason{};
  std::uint64_t connect_attempts = 0;    // connects started (or listens, or the adopt)
  std::uint64_t disconnects = 0;         // connections that ended after reaching handshaking
  std::uint64_t frames_in = 0;           // valid sealed frames received
  std::uint64_t frames_out = 0;          // frames written (the hello and keepalive pings included)
  std::uint64_t keepalive_pings = 0;     // pings sent after keepalive_interval of silence
  std::uint64_t keepalive_timeouts = 0;  // connections ended by keepalive_timeout of silence

  // Calls made through this Agent (keepalive pings are not calls), counted
  // on the I/O thread. A call ends once: answered by the agent (outcome 0,
  // or the ErrorKind of the guest's error), or failed here (its ErrorKind:
  // not ready, timeout, cancelled, dropped connection, closed).
  static constexpr std::size_t kCallOutcomes = 15;  // 0: ok; 1..14: ErrorKind
  std::uint64_t calls_in_flight = 0;
  std::array<std::uint64_t, kCallOutcomes> calls_ended{};
  // Round trip of the calls the agent answered, from the request queued to
  // the final answer (streamed calls included: an exec lasts as long as its
  // program). Bucket i counts those of at most kRttBounds[i] seconds and
  // more than the bound before; the last bucket those above every bound.
  static constexpr std::array<double, 14> kRttBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                        0.1,    0.25,  0.5,    1.0,   2.5,  10.0,  60.0};
  std::array<std::uint64_t, kRttBounds.size() + 1> rtt_buckets{};
  double rtt_sum_seconds = 0;
  // Exceptions that escaped this agent's callbacks and were caught (see
  // "Callbacks that throw" above).
  std::uint64_t callback_exceptions = 0;
};

class QTX_HOST_API Agent {
 public:
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  const std::string& name() const;
  State state() const;
  // The identity from the last completed handshake.
  std::optional<v1::AgentIdentity> identity() const;
  std::optional<v1::TelemetrySample> latest_telemetry() const;
  AgentStats stats() const;
  // The failure that last ended or prevented a connection ("no agent on
  // /run/vm1.sock: connection refused"), if any.
  std::optional<Error> last_error() const;

  // Blocks until ready; the identity, or kTimeout (with the last connection
  // error in its message), or kClosed.
  Result<v1::AgentIdentity> wait_ready(std::chrono::milliseconds timeout);

  // Closes the connection for good; calls in flight fail with kClosed and
  // later calls fail at once. Idempotent; also done by the destructor and
  // by Manager::remove.
  void close();

  // Cancels a call in flight: it fails with kCancelled at once and the agent
  // is told to stop (an exec is killed, a transfer abandoned).
  void cancel(CallId id);
  // Asks a call whose UploadSource returned kSourcePending for data again.
  // Any thread; nothing when the call has ended or is not waiting.
  void resume(CallId id);
  // Gives a paced call (ExecStreams::paced_output, TransferOptions::paced)
  // credit for `bytes` more of its output, which its consumer has taken.
  // Any thread; bytes beyond what arrived are ignored.
  void grant(CallId id, std::uint64_t bytes);

  // Any request, answered by its Response (a guest error becomes an Error).
  // Streamed kinds (exec, file_read, file_write) are refused here.
  Result<v1::Response> call(const v1::Request& request, CallOptions options = {});
  CallId call(const v1::Request& request, CallOptions options, Callback<v1::Response> done);

  // --- typed calls: a blocking form and an asynchronous form --------------
#define QTX_HOST_TYPED_CALL(method, Req, Resp)                       \
  Result<Resp> method(const Req& request, CallOptions options = {}); \
  CallId method(const Req& request, CallOptions options, Callback<Resp> done);

  QTX_HOST_TYPED_CALL(ping, v1::PingRequest, v1::PingResponse)
  QTX_HOST_TYPED_CALL(info, v1::InfoRequest, v1::InfoResponse)
  QTX_HOST_TYPED_CALL(telemetry_config, v1::TelemetryConfigRequest, v1::TelemetryConfigResponse)
  QTX_HOST_TYPED_CALL(file_stat, v1::FileStatRequest, v1::FileStat)
  QTX_HOST_TYPED_CALL(file_list, v1::FileListRequest, v1::FileListResponse)
  QTX_HOST_TYPED_CALL(file_mkdir, v1::FileMkdirRequest, v1::Empty)
  QTX_HOST_TYPED_CALL(file_remove, v1::FileRemoveRequest, v1::Empty)
  QTX_HOST_TYPED_CALL(file_set_attr, v1::FileSetAttrRequest, v1::Empty)
  QTX_HOST_TYPED_CALL(file_hash, v1::FileHashRequest, v1::FileHashResponse)
  QTX_HOST_TYPED_CALL(power, v1::PowerRequest, v1::Empty)
  QTX_HOST_TYPED_CALL(freeze, v1::FreezeRequest, v1::FreezeResponse)
  QTX_HOST_TYPED_CALL(thaw, v1::ThawRequest, v1::Empty)
  QTX_HOST_TYPED_CALL(freeze_status, v1::FreezeStatusRequest, v1::FreezeStatusResponse)
  QTX_HOST_TYPED_CALL(set_password, v1::SetPasswordRequest, v1::Empty)
  QTX_HOST_TYPED_CALL(ssh_keys, v1::SshKeysRequest, v1::SshKeysResponse)
  QTX_HOST_TYPED_CALL(time_get, v1::TimeGetRequest, v1::TimeGetResponse)
  QTX_HOST_TYPED_CALL(time_set, v1::TimeSetRequest, v1::Empty)
  QTX_HOST_TYPED_CALL(hostname_get, v1::HostnameGetRequest, v1::HostnameGetResponse)
  QTX_HOST_TYPED_CALL(hostname_set, v1::HostnameSetRequest, v1::Empty)
  QTX_HOST_TYPED_CALL(network, v1::NetworkRequest, v1::NetworkResponse)
  QTX_HOST_TYPED_CALL(process_list, v1::ProcessListRequest, v1::ProcessListResponse)
  QTX_HOST_TYPED_CALL(process_kill, v1::ProcessKillRequest, v1::Empty)
#undef QTX_HOST_TYPED_CALL

  // Sets the guest clock to this host's clock (CLOCK_REALTIME read when
  // the call is made).
  Result<v1::Empty> time_sync(bool hwclock, CallOptions options = {});

  // --- streamed calls --------------------------------------------------------
  Result<ExecOutcome> exec(const v1::ExecRequest& request, ExecStreams streams = {},
                           CallOptions options = {.timeout = std::chrono::milliseconds(0)});
  CallId exec(const v1::ExecRequest& request, ExecStreams streams, CallOptions options, Callback<ExecOutcome> done);

  // Upload to the guest. `total` (0: unknown) is only for progress.
  CallId upload(UploadSource source, std::uint64_t total, const v1::FileWriteRequest& request, TransferOptions transfer,
                CallOptions options, Callback<TransferResult> done);
  Result<TransferResult> upload_file(const std::string& local_path, const v1::FileWriteRequest& request,
                                     TransferOptions transfer = {},
                                     CallOptions options = {.timeout = std::chrono::milliseconds(0)});
  Result<TransferResult> upload_bytes(std::string data, const v1::FileWriteRequest& request,
                                      TransferOptions transfer = {},
                                      CallOptions options = {.timeout = std::chrono::milliseconds(0)});

  // Download from the guest.
  CallId download(const v1::FileReadRequest& request, DownloadSink sink, TransferOptions transfer, CallOptions options,
                  Callback<TransferResult> done);
  // Writes to `local_path` through a temporary file renamed into place on
  // success; nothing is left behind on failure.
  Result<TransferResult> download_file(const v1::FileReadRequest& request, const std::string& local_path,
                                       TransferOptions transfer = {},
                                       CallOptions options = {.timeout = std::chrono::milliseconds(0)});
  // Appends the data to *out.
  Result<TransferResult> download_bytes(const v1::FileReadRequest& request, std::string* out,
                                        TransferOptions transfer = {},
                                        CallOptions options = {.timeout = std::chrono::milliseconds(0)});

 private:
  friend class Manager;
  explicit Agent(std::shared_ptr<detail::Link> link);
  std::shared_ptr<detail::Link> link_;
};

}  // namespace qtx::host

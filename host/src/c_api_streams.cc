// The C API's streamed calls as handles (qtx_exec, qtx_transfer): the
// caller feeds stdin or upload data and drains output or download data from
// threads of its own, while the call runs on the I/O thread.
//
// Between the two sits a StreamState, shared by the handle and the call's
// callbacks (which may outlive the handle by a moment). Its buffers are
// bounded both ways without blocking the I/O thread:
//   - input: the caller's writes block while the buffer is full; the call's
//     source takes from it and, finding it empty, answers kSourcePending
//     until a write (or the close) resumes the call;
//   - output: the call is paced, so the agent sends no more than one window
//     beyond what the caller has read; each read grants its bytes back.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "c_api_support.h"
#include "envelope_json.h"
#include "qtx/host/agent.h"

namespace {

namespace v1 = ::qtx::agent::v1;
using qtx::host::CallId;
using qtx::host::Error;
using qtx::host::ErrorKind;
using qtx::host::Result;
using namespace qtx::host::c_api;

// Bytes written at the back and taken from the front, compacted once the
// taken part is the larger half (each byte is moved at most once more).
class ByteQueue {
 public:
  std::size_t size() const { return data_.size() - head_; }
  bool empty() const { return size() == 0; }
  void append(const char* p, std::size_t n) { data_.append(p, n); }
  std::size_t take(char* out, std::size_t cap) {
    const std::size_t n = std::min(cap, size());
    std::memcpy(out, data_.data() + head_, n);
    head_ += n;
    if (head_ == data_.size()) {
      data_.clear();
      head_ = 0;
    } else if (head_ > data_.size() / 2) {
      data_.erase(0, head_);
      head_ = 0;
    }
    return n;
  }
  std::size_t clear() {
    const std::size_t n = size();
    std::string().swap(data_);
    head_ = 0;
    return n;
  }

 private:
  std::string data_;
  std::size_t head_ = 0;
};

constexpr std::size_t kStdinBuffer = 256 * 1024;
constexpr std::size_t kUploadBuffer = 1024 * 1024;

struct StreamState {
  std::shared_ptr<qtx::host::Agent> agent;
  std::mutex mu;
  std::condition_variable cv;
  CallId id = 0;
  bool ended = false;
  std::optional<Error> error;  // set when the call failed

  // Input (exec stdin, upload data).
  ByteQueue in;
  std::size_t in_cap = 0;
  bool in_closed = false;
  bool source_waiting = false;  // the source answered kSourcePending

  // Output (exec stdout [0] and stderr [1], download data [0]).
  ByteQueue out[2];
  bool discard = false;    // wait() was called: output is granted back unread
  bool discarded = false;  // ... and some was

  // Outcome.
  v1::ExecResult exec_result;
  qtx::host::TransferResult transfer_result;
};

// The source of the call's input, on the I/O thread.
Result<std::size_t> take_input(StreamState& s, char* buf, std::size_t n) {
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.in.empty()) {
    const std::size_t k = s.in.take(buf, n);
    s.cv.notify_all();
    return k;
  }
  if (s.in_closed) return std::size_t{0};
  s.source_waiting = true;
  return qtx::host::kSourcePending;
}

// The sink of the call's output, on the I/O thread. Never refuses: the
// agent cannot send more than the window beyond what was read.
void put_output(StreamState& s, int index, std::string_view data) {
  CallId grant_to = 0;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.discard) {
      grant_to = s.id;
      s.discarded = true;
    } else {
      s.out[index].append(data.data(), data.size());
      s.cv.notify_all();
    }
  }
  if (grant_to != 0) s.agent->grant(grant_to, data.size());
}

// The call's outcome, on the I/O thread.
template <class Fill>
void finish(StreamState& s, std::optional<Error> error, Fill&& fill_outcome) {
  std::lock_guard<std::mutex> lock(s.mu);
  s.ended = true;
  if (error) {
    s.error = std::move(error);
  } else {
    fill_outcome();
  }
  s.cv.notify_all();
}

int ended_error(const StreamState& s, const char* what, qtx_error* err) {
  if (s.error) return fail(err, *s.error);
  return fail(err, Error(ErrorKind::kClosed, std::string(what) + ": the call has ended"));
}

int feed(StreamState& s, const void* data, std::size_t n, const char* what, qtx_error* err) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    std::size_t k = 0;
    bool wake = false;
    CallId id = 0;
    {
      std::unique_lock<std::mutex> lock(s.mu);
      s.cv.wait(lock, [&] { return s.ended || s.in_closed || s.in.size() < s.in_cap; });
      if (s.ended) return ended_error(s, what, err);
      if (s.in_closed) return fail(err, Error(ErrorKind::kClosed, std::string(what) + ": the input was closed"));
      k = std::min(n, s.in_cap - s.in.size());
      s.in.append(p, k);
      wake = std::exchange(s.source_waiting, false);
      id = s.id;
    }
    if (wake) s.agent->resume(id);
    p += k;
    n -= k;
  }
  return succeed(err);
}

int close_input(StreamState& s, const char* what, qtx_error* err) {
  bool wake = false;
  CallId id = 0;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.in_closed) return succeed(err);
    if (s.ended) return ended_error(s, what, err);
    s.in_closed = true;
    wake = std::exchange(s.source_waiting, false);
    id = s.id;
    s.cv.notify_all();  // writers blocked on a full buffer
  }
  if (wake) s.agent->resume(id);
  return succeed(err);
}

int drain(StreamState& s, int index, void* buf, std::size_t cap, std::size_t* n, qtx_error* err) {
  std::size_t k = 0;
  CallId id = 0;
  {
    std::unique_lock<std::mutex> lock(s.mu);
    s.cv.wait(lock, [&] { return !s.out[index].empty() || s.ended; });
    if (s.out[index].empty()) {  // ended
      *n = 0;
      if (s.error) return fail(err, *s.error);
      if (s.discarded) {
        return fail(err, Error(ErrorKind::kClosed, "the rest of the output was discarded by a wait for the end"));
      }
      return succeed(err);  // everything read
    }
    k = s.out[index].take(static_cast<char*>(buf), cap);
    id = s.id;
  }
  *n = k;
  if (k > 0) s.agent->grant(id, k);
  return succeed(err);
}

// Discards what was not read (granting it back, so the agent is never held
// up by it) and waits for the end.
void discard_and_wait(StreamState& s) {
  std::size_t unread = 0;
  CallId id = 0;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.discard = true;
    unread = s.out[0].clear() + s.out[1].clear();
    if (unread > 0) s.discarded = true;
    id = s.id;
    s.cv.notify_all();  // readers blocked on an empty stream
  }
  if (unread > 0) s.agent->grant(id, unread);
  std::unique_lock<std::mutex> lock(s.mu);
  s.cv.wait(lock, [&] { return s.ended; });
}

// Cancels the call if it still runs and waits for its outcome: after that
// no callback of the call runs any more.
void cancel_and_wait(StreamState& s) {
  CallId id = 0;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.ended) return;
    id = s.id;
  }
  s.agent->cancel(id);
  discard_and_wait(s);
}

void set_id(StreamState& s, CallId id) {
  std::lock_guard<std::mutex> lock(s.mu);
  s.id = id;
}

Error no_handle(const char* fn) { return Error(ErrorKind::kInvalidArgument, std::string(fn) + ": handle is NULL"); }

// A handle function that blocks, called from a callback: it would wait for
// the I/O thread it is blocking.
Error from_callback(const char* fn) {
  return Error(ErrorKind::kInvalidArgument,
               std::string(fn) + ": called from a callback, where it would block the I/O thread for good");
}

}  // namespace

int qtx::host::c_api::read_transfer_options(const qtx_transfer_options* in, TransferSetup* out, qtx_error* err) {
  qtx_transfer_options o;
  if (in == nullptr) {
    qtx_transfer_options_init(&o);
  } else if (int rc = read_struct(in, sizeof(qtx_transfer_options), "qtx_transfer_options", &o, err); rc != QTX_OK) {
    return rc;
  }
  out->call = call_options(o.timeout_ms, o.cancel);
  out->transfer.verify_sha256 = o.skip_sha256 == 0;
  out->transfer.expected_total = o.expected_total;
  if (auto cb = o.on_progress) {
    void* user = o.user;
    out->transfer.on_progress = [cb, user](const qtx::host::TransferProgress& p) {
      call_back(cb, user, p.bytes, p.total);
    };
  }
  out->mode = o.mode;
  return QTX_OK;
}

struct qtx_exec {
  std::shared_ptr<StreamState> state;
  bool callback_output = false;  // on_output was given: nothing to read
};

struct qtx_transfer {
  std::shared_ptr<StreamState> state;
  bool upload = false;
};

extern "C" {

qtx_exec* qtx_agent_exec_start(qtx_agent* agent, const char* request_json, const qtx_exec_options* options,
                               qtx_error* err) noexcept {
  qtx_exec* out = nullptr;
  guarded(err, [&] {
    if (agent == nullptr || request_json == nullptr) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_exec_start: agent and request are required"));
    }
    qtx_exec_options o;
    if (options == nullptr) {
      qtx_exec_options_init(&o);
    } else if (int rc = read_struct(options, sizeof(qtx_exec_options), "qtx_exec_options", &o, err); rc != QTX_OK) {
      return rc;
    }
    v1::ExecRequest req;
    std::string why;
    if (!json_codec().json_to_message(request_json, &req, &why)) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "exec request JSON: " + why));
    }
    if (req.argv().empty() || req.argv(0).empty()) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_exec_start: argv is empty"));
    }
    if (req.stdin_stream() && !o.stdin_stream) {
      return fail(err,
                  Error(ErrorKind::kInvalidArgument,
                        "qtx_agent_exec_start: the request asks for stdin_stream: set qtx_exec_options.stdin_stream "
                        "to 1 to feed it"));
    }
    auto st = std::make_shared<StreamState>();
    st->agent = agent->agent;
    st->in_cap = kStdinBuffer;
    qtx::host::ExecStreams streams;
    if (auto cb = o.on_output) {
      void* user = o.user;
      streams.on_stdout = [cb, user](std::string_view d) { call_back(cb, user, 1, d.data(), d.size()); };
      streams.on_stderr = [cb, user](std::string_view d) { call_back(cb, user, 2, d.data(), d.size()); };
    } else {
      streams.paced_output = true;
      streams.on_stdout = [st](std::string_view d) { put_output(*st, 0, d); };
      streams.on_stderr = [st](std::string_view d) { put_output(*st, 1, d); };
    }
    if (o.stdin_stream) {
      streams.stdin_source = [st](char* buf, std::size_t n) { return take_input(*st, buf, n); };
    } else {
      st->in_closed = true;
    }
    const CallId id = agent->agent->exec(req, std::move(streams), call_options(o.timeout_ms, o.cancel),
                                         [st](Result<qtx::host::ExecOutcome> r) {
                                           std::optional<Error> e;
                                           if (!r) e = r.error();
                                           finish(*st, std::move(e), [&] { st->exec_result = r->result; });
                                         });
    set_id(*st, id);
    out = new qtx_exec{st, o.on_output != nullptr};
    return succeed(err);
  });
  return out;
}

int qtx_exec_write_stdin(qtx_exec* exec, const void* data, size_t n, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (exec == nullptr) return fail(err, no_handle("qtx_exec_write_stdin"));
    if (data == nullptr && n > 0) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_exec_write_stdin: data is NULL"));
    }
    if (in_callback()) return fail(err, from_callback("qtx_exec_write_stdin"));
    const std::shared_ptr<StreamState> st = exec->state;  // alive while this blocks
    return feed(*st, data, n, "exec stdin", err);
  });
}

int qtx_exec_close_stdin(qtx_exec* exec, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (exec == nullptr) return fail(err, no_handle("qtx_exec_close_stdin"));
    const std::shared_ptr<StreamState> st = exec->state;
    return close_input(*st, "exec stdin", err);
  });
}

int qtx_exec_read(qtx_exec* exec, int stream, void* buf, size_t cap, size_t* n, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (exec == nullptr) return fail(err, no_handle("qtx_exec_read"));
    if ((stream != 1 && stream != 2) || buf == nullptr || n == nullptr || cap == 0) {
      return fail(err, Error(ErrorKind::kInvalidArgument,
                             "qtx_exec_read: stream (1 or 2), a buffer, its capacity and n are required"));
    }
    if (exec->callback_output) {
      return fail(err, Error(ErrorKind::kInvalidArgument,
                             "qtx_exec_read: this exec gives its output to on_output; there is nothing to read"));
    }
    if (in_callback()) return fail(err, from_callback("qtx_exec_read"));
    const std::shared_ptr<StreamState> st = exec->state;  // alive while this blocks
    return drain(*st, stream - 1, buf, cap, n, err);
  });
}

int qtx_exec_wait(qtx_exec* exec, char** result_json, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (exec == nullptr) return fail(err, no_handle("qtx_exec_wait"));
    if (in_callback()) return fail(err, from_callback("qtx_exec_wait"));
    const std::shared_ptr<StreamState> st = exec->state;  // alive while this blocks
    StreamState& s = *st;
    discard_and_wait(s);
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.error) return fail(err, *s.error);
    if (result_json != nullptr) {
      std::string json;
      json_codec().message_to_json(s.exec_result, &json);
      *result_json = dup_string(json);
      if (*result_json == nullptr) return fail(err, Error(ErrorKind::kLocal, "out of memory"));
    }
    return succeed(err);
  });
}

void qtx_exec_cancel(qtx_exec* exec) noexcept {
  if (exec == nullptr) return;
  guarded(nullptr, [&] {
    CallId id = 0;
    {
      std::lock_guard<std::mutex> lock(exec->state->mu);
      id = exec->state->id;
    }
    exec->state->agent->cancel(id);
    return QTX_OK;
  });
}

// From a callback the command is cancelled but not waited for (that would
// block the I/O thread): its callbacks may still run once after.
void qtx_exec_free(qtx_exec* exec) noexcept {
  if (exec == nullptr) return;
  guarded(nullptr, [&] {
    if (in_callback()) {
      qtx_exec_cancel(exec);
    } else {
      cancel_and_wait(*exec->state);
    }
    return QTX_OK;
  });
  delete exec;
}

// --- transfers ---------------------------------------------------------------------

namespace {

qtx::host::Callback<qtx::host::TransferResult> transfer_done(const std::shared_ptr<StreamState>& st) {
  return [st](Result<qtx::host::TransferResult> r) {
    std::optional<Error> e;
    if (!r) e = r.error();
    finish(*st, std::move(e), [&] { st->transfer_result = *r; });
  };
}

}  // namespace

qtx_transfer* qtx_agent_upload_start(qtx_agent* agent, const char* guest_path, const qtx_transfer_options* options,
                                     qtx_error* err) noexcept {
  qtx_transfer* out = nullptr;
  guarded(err, [&] {
    if (agent == nullptr || guest_path == nullptr || *guest_path == '\0') {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_upload_start: agent and guest_path are required"));
    }
    TransferSetup setup;
    if (int rc = read_transfer_options(options, &setup, err); rc != QTX_OK) return rc;
    auto st = std::make_shared<StreamState>();
    st->agent = agent->agent;
    st->in_cap = kUploadBuffer;
    v1::FileWriteRequest w;
    w.set_path(guest_path);
    w.set_mode(setup.mode);
    w.set_atomic(true);
    qtx::host::UploadSource source = [st](char* buf, std::size_t n) { return take_input(*st, buf, n); };
    const CallId id = agent->agent->upload(std::move(source), setup.transfer.expected_total, w,
                                           std::move(setup.transfer), setup.call, transfer_done(st));
    set_id(*st, id);
    out = new qtx_transfer{st, true};
    return succeed(err);
  });
  return out;
}

qtx_transfer* qtx_agent_download_start(qtx_agent* agent, const char* guest_path, const qtx_transfer_options* options,
                                       qtx_error* err) noexcept {
  qtx_transfer* out = nullptr;
  guarded(err, [&] {
    if (agent == nullptr || guest_path == nullptr || *guest_path == '\0') {
      return fail(err,
                  Error(ErrorKind::kInvalidArgument, "qtx_agent_download_start: agent and guest_path are required"));
    }
    TransferSetup setup;
    if (int rc = read_transfer_options(options, &setup, err); rc != QTX_OK) return rc;
    auto st = std::make_shared<StreamState>();
    st->agent = agent->agent;
    st->in_closed = true;
    setup.transfer.paced = true;
    v1::FileReadRequest rd;
    rd.set_path(guest_path);
    qtx::host::DownloadSink sink = [st](std::string_view data) -> Result<void> {
      put_output(*st, 0, data);
      return {};
    };
    const CallId id =
        agent->agent->download(rd, std::move(sink), std::move(setup.transfer), setup.call, transfer_done(st));
    set_id(*st, id);
    out = new qtx_transfer{st, false};
    return succeed(err);
  });
  return out;
}

int qtx_transfer_write(qtx_transfer* transfer, const void* data, size_t n, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (transfer == nullptr) return fail(err, no_handle("qtx_transfer_write"));
    if (!transfer->upload) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_transfer_write: this transfer is a download"));
    }
    if (data == nullptr && n > 0) return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_transfer_write: no data"));
    if (in_callback()) return fail(err, from_callback("qtx_transfer_write"));
    const std::shared_ptr<StreamState> st = transfer->state;  // alive while this blocks
    return feed(*st, data, n, "upload", err);
  });
}

int qtx_transfer_close_write(qtx_transfer* transfer, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (transfer == nullptr) return fail(err, no_handle("qtx_transfer_close_write"));
    if (!transfer->upload) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_transfer_close_write: this transfer is a download"));
    }
    const std::shared_ptr<StreamState> st = transfer->state;
    return close_input(*st, "upload", err);
  });
}

int qtx_transfer_read(qtx_transfer* transfer, void* buf, size_t cap, size_t* n, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (transfer == nullptr) return fail(err, no_handle("qtx_transfer_read"));
    if (transfer->upload) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_transfer_read: this transfer is an upload"));
    }
    if (buf == nullptr || n == nullptr || cap == 0) {
      return fail(err,
                  Error(ErrorKind::kInvalidArgument, "qtx_transfer_read: a buffer, its capacity and n are required"));
    }
    if (in_callback()) return fail(err, from_callback("qtx_transfer_read"));
    const std::shared_ptr<StreamState> st = transfer->state;  // alive while this blocks
    return drain(*st, 0, buf, cap, n, err);
  });
}

int qtx_transfer_wait(qtx_transfer* transfer, uint64_t* bytes, char* sha256_hex, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (transfer == nullptr) return fail(err, no_handle("qtx_transfer_wait"));
    if (in_callback()) return fail(err, from_callback("qtx_transfer_wait"));
    const std::shared_ptr<StreamState> st = transfer->state;  // alive while this blocks
    StreamState& s = *st;
    discard_and_wait(s);
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.error) return fail(err, *s.error);
    if (bytes != nullptr) *bytes = s.transfer_result.bytes;
    if (sha256_hex != nullptr) std::snprintf(sha256_hex, 65, "%s", s.transfer_result.sha256_hex.c_str());
    return succeed(err);
  });
}

void qtx_transfer_cancel(qtx_transfer* transfer) noexcept {
  if (transfer == nullptr) return;
  guarded(nullptr, [&] {
    CallId id = 0;
    {
      std::lock_guard<std::mutex> lock(transfer->state->mu);
      id = transfer->state->id;
    }
    transfer->state->agent->cancel(id);
    return QTX_OK;
  });
}

// As qtx_exec_free, from a callback too.
void qtx_transfer_free(qtx_transfer* transfer) noexcept {
  if (transfer == nullptr) return;
  guarded(nullptr, [&] {
    if (in_callback()) {
      qtx_transfer_cancel(transfer);
    } else {
      cancel_and_wait(*transfer->state);
    }
    return QTX_OK;
  });
  delete transfer;
}

}  // extern "C"

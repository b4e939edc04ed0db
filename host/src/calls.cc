#include "calls.h"

#include <algorithm>

#include "error_table.h"
#include "link.h"
#include "qtx/quote.h"

namespace qtx::host::detail {
namespace {

namespace v1 = ::qtx::agent::v1;

Error unexpected(const char* call, const v1::Response& r) {
  return Error(ErrorKind::kProtocol, std::string(call) + ": the agent answered with an unexpected kind (" +
                                         std::to_string(static_cast<int>(r.kind_case())) + ")");
}

void send_credit(Link& link, std::uint64_t id, std::uint64_t bytes) {
  v1::Envelope env;
  env.set_id(id);
  env.mutable_credit()->set_bytes(bytes);
  link.send(env);
}

}  // namespace

void CreditReturn::give(Link& link, std::uint64_t id, std::uint64_t bytes, std::uint64_t batch) {
  consumed += bytes;
  unacked += bytes;
  if (unacked > 0 && unacked >= batch) {
    send_credit(link, id, unacked);
    granted += unacked;
    unacked = 0;
  }
}

std::optional<Error> Call::on_progress(Link&, std::uint64_t, const v1::Progress&) {
  return Error(ErrorKind::kProtocol, "the agent streamed data for a call that takes none");
}

// A transfer whose byte counts agree: its result, with the digests compared
// unless the transfer skipped them.
Result<TransferResult> transfer_result(const char* what, std::uint64_t bytes, bool skip_sha256, wire::Sha256& mine,
                                       const std::string& theirs) {
  TransferResult result{bytes, ""};
  if (skip_sha256) return result;
  const wire::Sha256::Digest digest = mine.finish();
  if (theirs != wire::Sha256::bytes(digest)) {
    return Error(ErrorKind::kProtocol,
                 std::string(what) + ": sha256 mismatch over " + std::to_string(bytes) + " bytes");
  }
  result.sha256_hex = wire::Sha256::hex(digest);
  return result;
}

Error guest_error(const v1::Error& e) {
  const ErrorKind kind = kind_from_wire(e.code());
  // The guest's words, made printable and bounded: an application logs
  // error messages, and a guest must not forge its log lines.
  return Error(kind, printable(e.message(), kMaxGuestMessage), e.code(), e.os_errno());
}

// --- UnaryCall ---------------------------------------------------------------------

void UnaryCall::on_response(v1::Response& response) {
  if (!done_) return;
  if (response.has_error()) return done_(guest_error(response.error()));
  done_(std::move(response));
}

void UnaryCall::fail(Error error) {
  if (done_) done_(std::move(error));
}

// --- ExecCall -----------------------------------------------------------------------

ExecCall::ExecCall(v1::ExecRequest request, ExecStreams streams, Callback<ExecOutcome> done)
    : request_(std::move(request)), streams_(std::move(streams)), done_(std::move(done)) {
  if (request_.output_window() == 0) request_.set_output_window(kDefaultWindow);
  window_ = request_.output_window();
  credit_.granted = window_;
  if (streams_.stdin_source) {
    request_.set_stdin_stream(true);
  } else {
    // Nothing could feed a stream: the program's stdin is the request's
    // bytes, then closed, rather than an agent waiting for more forever.
    request_.set_stdin_stream(false);
    stdin_done_ = true;
  }
}

void ExecCall::fill_request(v1::Request* request) { *request->mutable_exec() = request_; }

std::optional<Error> ExecCall::on_started(Link& link, std::uint64_t id) { return pump_stdin(link, id); }

std::optional<Error> ExecCall::on_credit(Link& link, std::uint64_t id, std::uint64_t bytes) {
  if (stdin_done_) return std::nullopt;  // late credit after the end: nothing to send
  stdin_credit_ += bytes;
  return pump_stdin(link, id);
}

std::optional<Error> ExecCall::on_outbox_room(Link& link, std::uint64_t id) { return pump_stdin(link, id); }

std::optional<Error> ExecCall::on_resume(Link& link, std::uint64_t id) { return pump_stdin(link, id); }

// Sends stdin while the agent's credit and the outbox allow. The source is
// asked for no more than the credit, so nothing waits here either: a
// program that does not read holds the source back.
std::optional<Error> ExecCall::pump_stdin(Link& link, std::uint64_t id) {
  while (!stdin_done_ && stdin_credit_ > 0 && link.stream_room(id)) {
    // A piece whose envelope fits in any agent's max_message (at least
    // wire::kMinMaxPayload) and in ours.
    const std::size_t piece = std::min({kStdinChunk, wire::kMinMaxPayload - wire::kMaxPieceOverhead, link.max_piece()});
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(piece, stdin_credit_));
    stdin_buf_.resize(want);
    Result<std::size_t> got = streams_.stdin_source(stdin_buf_.data(), want);
    if (!got) return got.error();
    if (*got == kSourcePending) break;  // Agent::resume asks again
    const std::size_t n = std::min(*got, want);
    v1::Envelope env;
    env.set_id(id);
    auto* in = env.mutable_progress()->mutable_exec_input();
    if (n == 0) {
      in->set_eof(true);  // the end needs no credit
      stdin_done_ = true;
      std::string().swap(stdin_buf_);
    } else {
      in->set_data(stdin_buf_.data(), n);
      stdin_credit_ -= n;
    }
    if (!link.send(env)) return Error(ErrorKind::kDisconnected, "exec: stdin could not be sent");
  }
  return std::nullopt;
}

std::optional<Error> ExecCall::on_progress(Link& link, std::uint64_t id, const v1::Progress& progress) {
  if (!progress.has_exec_output()) return Error(ErrorKind::kProtocol, "exec: unexpected stream data");
  const v1::ExecOutput& out = progress.exec_output();
  received_ += out.data().size();
  if (received_ > credit_.granted) {  // a guest that ignores flow control is not buffered without bound
    return Error(ErrorKind::kProtocol, "exec: the agent sent " + std::to_string(received_) +
                                           " bytes of output against " + std::to_string(credit_.granted) +
                                           " of credit");
  }
  const bool is_err = out.stream() == v1::ExecOutput::STREAM_STDERR;
  auto& cb = is_err ? streams_.on_stderr : streams_.on_stdout;
  if (cb) {
    cb(out.data());
  } else {
    std::string& sink = is_err ? outcome_.stderr_data : outcome_.stdout_data;
    if (sink.size() + out.data().size() > streams_.max_collected) {
      return Error(ErrorKind::kLocal, std::string("exec: the command's ") + (is_err ? "stderr" : "stdout") +
                                          " passed the " + std::to_string(streams_.max_collected) +
                                          " bytes this call collects (ExecStreams::max_collected): the command was "
                                          "cancelled. Stream its output with a callback instead.");
    }
    sink.append(out.data());
  }
  // Half a window at a time: the agent always has at least half a window
  // to send into while the consumer keeps up.
  if (!streams_.paced_output) credit_.give(link, id, out.data().size(), window_ / 2);
  return std::nullopt;
}

std::optional<Error> ExecCall::on_grant(Link& link, std::uint64_t id, std::uint64_t bytes) {
  if (streams_.paced_output) credit_.give(link, id, std::min(bytes, received_ - credit_.consumed), window_ / 2);
  return std::nullopt;
}

void ExecCall::on_response(v1::Response& response) {
  if (response.has_error()) return done_(guest_error(response.error()));
  if (!response.has_exec()) return done_(unexpected("exec", response));
  outcome_.result = std::move(*response.mutable_exec());
  done_(std::move(outcome_));
}

void ExecCall::fail(Error error) { done_(std::move(error)); }

// --- UploadCall ---------------------------------------------------------------------

UploadCall::UploadCall(UploadSource source, std::uint64_t total, v1::FileWriteRequest request, TransferOptions transfer,
                       Callback<TransferResult> done)
    : source_(std::move(source)),
      total_(total),
      request_(std::move(request)),
      transfer_(std::move(transfer)),
      done_(std::move(done)) {
  if (transfer_.chunk_size == 0) transfer_.chunk_size = TransferOptions().chunk_size;
  if (request_.expected_size() == 0) request_.set_expected_size(total_);
  if (!transfer_.verify_sha256) request_.set_skip_sha256(true);
}

void UploadCall::fill_request(v1::Request* request) { *request->mutable_file_write() = request_; }

std::optional<Error> UploadCall::on_credit(Link& link, std::uint64_t id, std::uint64_t bytes) {
  credit_ += bytes;
  return pump(link, id);
}

std::optional<Error> UploadCall::on_outbox_room(Link& link, std::uint64_t id) { return pump(link, id); }

std::optional<Error> UploadCall::on_resume(Link& link, std::uint64_t id) { return pump(link, id); }

std::optional<Error> UploadCall::pump(Link& link, std::uint64_t id) {
  while (!sent_last_ && credit_ > 0 && link.stream_room(id)) {
    const std::size_t piece = std::min<std::size_t>(transfer_.chunk_size, link.max_piece());
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(piece, credit_));
    buf_.resize(want);
    Result<std::size_t> got = source_(buf_.data(), want);
    if (!got) return got.error();
    if (*got == kSourcePending) break;  // Agent::resume asks again
    const std::size_t n = std::min(*got, want);
    v1::Envelope env;
    env.set_id(id);
    auto* chunk = env.mutable_progress()->mutable_file_chunk();
    chunk->set_offset(sent_);
    if (n == 0) {
      // The end of the source: an empty chunk marks it (no credit needed).
      chunk->set_last(true);
      sent_last_ = true;
    } else {
      chunk->set_data(buf_.data(), n);
      if (!request_.skip_sha256()) sha_.update(buf_.data(), n);
      sent_ += n;
      credit_ -= n;
    }
    if (!link.send(env)) {
      return Error(ErrorKind::kInvalidArgument,
                   "upload: a chunk of " + std::to_string(n) + " bytes does not fit in one message: lower chunk_size");
    }
    if (n > 0 && transfer_.on_progress) transfer_.on_progress(TransferProgress{sent_, total_});
  }
  return std::nullopt;
}

void UploadCall::on_response(v1::Response& response) {
  if (response.has_error()) return done_(guest_error(response.error()));
  if (!response.has_file_write()) return done_(unexpected("upload", response));
  const v1::FileWriteResult& r = response.file_write();
  if (!sent_last_) {
    return done_(Error(ErrorKind::kProtocol, "upload: the agent answered before the last chunk was sent"));
  }
  if (r.bytes() != sent_) {
    return done_(Error(ErrorKind::kProtocol, "upload: sent " + std::to_string(sent_) + " bytes, the agent wrote " +
                                                 std::to_string(r.bytes())));
  }
  done_(transfer_result("upload", sent_, request_.skip_sha256(), sha_, r.sha256()));
}

void UploadCall::fail(Error error) { done_(std::move(error)); }

// --- DownloadCall -------------------------------------------------------------------

DownloadCall::DownloadCall(v1::FileReadRequest request, DownloadSink sink, TransferOptions transfer,
                           Callback<TransferResult> done)
    : request_(std::move(request)), sink_(std::move(sink)), transfer_(std::move(transfer)), done_(std::move(done)) {
  if (request_.chunk_size() == 0) request_.set_chunk_size(transfer_.chunk_size);
  if (request_.window() == 0) request_.set_window(transfer_.window ? transfer_.window : TransferOptions().window);
  if (!transfer_.verify_sha256) request_.set_skip_sha256(true);
  credit_.granted = request_.window();
}

void DownloadCall::fill_request(v1::Request* request) { *request->mutable_file_read() = request_; }

std::optional<Error> DownloadCall::on_progress(Link& link, std::uint64_t id, const v1::Progress& progress) {
  if (!progress.has_file_chunk()) return Error(ErrorKind::kProtocol, "download: unexpected stream data");
  const v1::FileChunk& c = progress.file_chunk();
  if (c.offset() != request_.offset() + received_) {
    return Error(ErrorKind::kProtocol, "download: chunk at offset " + std::to_string(c.offset()) + ", expected " +
                                           std::to_string(request_.offset() + received_));
  }
  if (c.data().empty()) return std::nullopt;
  if (received_ + c.data().size() > credit_.granted) {
    return Error(ErrorKind::kProtocol, "download: the agent sent " + std::to_string(received_ + c.data().size()) +
                                           " bytes against " + std::to_string(credit_.granted) + " of credit");
  }
  if (request_.length() != 0 && received_ + c.data().size() > request_.length()) {
    return Error(ErrorKind::kProtocol,
                 "download: the agent sent more than the " + std::to_string(request_.length()) + " bytes asked for");
  }
  if (transfer_.max_bytes != 0 && received_ + c.data().size() > transfer_.max_bytes) {
    return Error(ErrorKind::kLocal, "download: the agent sent more than the " + std::to_string(transfer_.max_bytes) +
                                        " bytes this download accepts (TransferOptions::max_bytes)");
  }
  if (Result<void> r = sink_(c.data()); !r) return r.error();
  if (!request_.skip_sha256()) sha_.update(c.data());
  received_ += c.data().size();
  if (transfer_.on_progress)
    transfer_.on_progress(
        TransferProgress{received_, transfer_.expected_total ? transfer_.expected_total : request_.length()});
  if (!transfer_.paced) credit_.give(link, id, c.data().size(), request_.window() / 4);
  return std::nullopt;
}

std::optional<Error> DownloadCall::on_grant(Link& link, std::uint64_t id, std::uint64_t bytes) {
  if (transfer_.paced) credit_.give(link, id, std::min(bytes, received_ - credit_.consumed), request_.window() / 4);
  return std::nullopt;
}

void DownloadCall::on_response(v1::Response& response) {
  if (response.has_error()) return done_(guest_error(response.error()));
  if (!response.has_file_read()) return done_(unexpected("download", response));
  const v1::FileReadResult& r = response.file_read();
  if (r.bytes() != received_) {
    return done_(Error(ErrorKind::kProtocol, "download: received " + std::to_string(received_) +
                                                 " bytes, the agent sent " + std::to_string(r.bytes())));
  }
  done_(transfer_result("download", received_, request_.skip_sha256(), sha_, r.sha256()));
}

void DownloadCall::fail(Error error) { done_(std::move(error)); }

}  // namespace qtx::host::detail

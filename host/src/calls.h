// The kinds of Call: one request and one answer (UnaryCall), and the
// streamed ones with their flow control (exec output, uploads, downloads).
#pragma once

#include <cstdint>
#include <string>

#include "call.h"
#include "qtx/host/agent.h"
#include "qtx/wire/format.h"
#include "qtx/wire/sha256.h"

namespace qtx::host::detail {

// Output credit an exec or a download gives back to the agent: the bytes
// its consumer has taken (all that arrived, unless the call is paced), in
// batches of at least `batch` bytes so that a credit frame is not sent per
// piece. The agent may send up to `granted` bytes in all.
struct CreditReturn {
  std::uint64_t granted = 0;  // the window included
  std::uint64_t consumed = 0;
  std::uint64_t unacked = 0;  // consumed, not yet sent back
  void give(Link& link, std::uint64_t id, std::uint64_t bytes, std::uint64_t batch);
};

// Any request whose answer is a single Response. `done` may be empty.
class UnaryCall final : public Call {
 public:
  UnaryCall(agent::v1::Request request, Callback<agent::v1::Response> done)
      : request_(std::move(request)), done_(std::move(done)) {}
  void fill_request(agent::v1::Request* request) override { request->Swap(&request_); }
  void on_response(agent::v1::Response& response) override;
  void fail(Error error) override;

 private:
  agent::v1::Request request_;
  Callback<agent::v1::Response> done_;
};

// exec: output to the stream callbacks (or collected), credit granted back
// as it is consumed; streamed stdin (ExecStreams::stdin_source) sent within
// the agent's stdin credit and while the outbox has room.
class ExecCall final : public Call {
 public:
  ExecCall(agent::v1::ExecRequest request, ExecStreams streams, Callback<ExecOutcome> done);
  void fill_request(agent::v1::Request* request) override;
  std::optional<Error> on_started(Link& link, std::uint64_t id) override;
  std::optional<Error> on_progress(Link& link, std::uint64_t id, const agent::v1::Progress& progress) override;
  std::optional<Error> on_credit(Link& link, std::uint64_t id, std::uint64_t bytes) override;
  std::optional<Error> on_outbox_room(Link& link, std::uint64_t id) override;
  std::optional<Error> on_resume(Link& link, std::uint64_t id) override;
  std::optional<Error> on_grant(Link& link, std::uint64_t id, std::uint64_t bytes) override;
  void on_response(agent::v1::Response& response) override;
  void fail(Error error) override;

  static constexpr std::uint64_t kDefaultWindow = 1024 * 1024;
  // Stdin is sent in pieces of at most this many bytes, and less when a
  // piece and its envelope would not fit in max_message (Link::max_piece()).
  static constexpr std::size_t kStdinChunk = 64 * 1024;

 private:
  agent::v1::ExecRequest request_;
  ExecStreams streams_;
  Callback<ExecOutcome> done_;
  ExecOutcome outcome_;
  std::uint64_t window_ = kDefaultWindow;
  CreditReturn credit_;
  std::uint64_t received_ = 0;
  std::optional<Error> pump_stdin(Link& link, std::uint64_t id);
  std::uint64_t stdin_credit_ = wire::kStdinWindow;
  bool stdin_done_ = false;  // the end was sent (or there is no stdin source)
  std::string stdin_buf_;
};

// Host -> guest file transfer: chunks sent within the agent's credit and
// while the outbox has room; the last chunk carries last = true.
class UploadCall final : public Call {
 public:
  UploadCall(UploadSource source, std::uint64_t total, agent::v1::FileWriteRequest request, TransferOptions transfer,
             Callback<TransferResult> done);
  void fill_request(agent::v1::Request* request) override;
  std::optional<Error> on_credit(Link& link, std::uint64_t id, std::uint64_t bytes) override;
  std::optional<Error> on_outbox_room(Link& link, std::uint64_t id) override;
  std::optional<Error> on_resume(Link& link, std::uint64_t id) override;
  void on_response(agent::v1::Response& response) override;
  void fail(Error error) override;

 private:
  std::optional<Error> pump(Link& link, std::uint64_t id);

  UploadSource source_;
  std::uint64_t total_;
  agent::v1::FileWriteRequest request_;
  TransferOptions transfer_;
  Callback<TransferResult> done_;
  std::string buf_;
  std::uint64_t credit_ = 0;
  std::uint64_t sent_ = 0;
  bool sent_last_ = false;
  wire::Sha256 sha_;
};

// Guest -> host file transfer: chunks checked for order, handed to the sink,
// and credited back in batches.
class DownloadCall final : public Call {
 public:
  DownloadCall(agent::v1::FileReadRequest request, DownloadSink sink, TransferOptions transfer,
               Callback<TransferResult> done);
  void fill_request(agent::v1::Request* request) override;
  std::optional<Error> on_progress(Link& link, std::uint64_t id, const agent::v1::Progress& progress) override;
  std::optional<Error> on_grant(Link& link, std::uint64_t id, std::uint64_t bytes) override;
  void on_response(agent::v1::Response& response) override;
  void fail(Error error) override;

 private:
  agent::v1::FileReadRequest request_;
  DownloadSink sink_;
  TransferOptions transfer_;
  Callback<TransferResult> done_;
  std::uint64_t received_ = 0;
  CreditReturn credit_;
  wire::Sha256 sha_;
};

}  // namespace qtx::host::detail

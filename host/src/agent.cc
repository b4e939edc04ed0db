#include "qtx/host/agent.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <future>

#include "calls.h"
#include "link.h"
#include "qtx/unique_fd.h"

namespace qtx::host {
namespace {

using detail::Link;

// Runs an asynchronous form and waits for its callback. The promise is
// shared with the callback, which may outlive this frame by a moment.
template <class T, class Start>
Result<T> block(Link& link, Start&& start) {
  if (link.io_thread().on_thread()) {
    return Error(ErrorKind::kInvalidArgument,
                 "a blocking call on the I/O thread (inside a callback) would deadlock: use the asynchronous form");
  }
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  start([promise](Result<T> r) { promise->set_value(std::move(r)); });
  return future.get();
}

// Fails an asynchronous call before it reaches the agent, still through the
// I/O thread, as the contract says (inline only once the Manager is gone).
template <class T>
CallId refuse(Link& link, Callback<T> done, Error error) {
  if (!done) return 0;
  auto shared = std::make_shared<Callback<T>>(std::move(done));
  if (!link.io_thread().post([shared, error] { (*shared)(error); })) (*shared)(std::move(error));
  return 0;
}

// A paced download grants credit through its CallId, which the blocking
// forms do not give out: it would stop after its first window.
Error paced_needs_async() {
  return Error(ErrorKind::kInvalidArgument,
               "download: TransferOptions::paced needs the asynchronous form (its CallId, "
               "to grant)");
}

Error local_errno(const std::string& what, int err) {
  return Error(ErrorKind::kLocal, what + ": " + std::strerror(err), 0, err);
}

}  // namespace

Agent::Agent(std::shared_ptr<detail::Link> link) : link_(std::move(link)) {}
Agent::~Agent() { link_->close(); }

const std::string& Agent::name() const { return link_->name(); }
State Agent::state() const { return link_->state(); }
std::optional<v1::AgentIdentity> Agent::identity() const { return link_->identity(); }
std::optional<v1::TelemetrySample> Agent::latest_telemetry() const { return link_->latest_telemetry(); }
AgentStats Agent::stats() const { return link_->stats(); }
std::optional<Error> Agent::last_error() const { return link_->last_error(); }
Result<v1::AgentIdentity> Agent::wait_ready(std::chrono::milliseconds timeout) { return link_->wait_ready(timeout); }
void Agent::close() { link_->close(); }
void Agent::cancel(CallId id) { link_->cancel(id); }
void Agent::resume(CallId id) { link_->resume(id); }
void Agent::grant(CallId id, std::uint64_t bytes) { link_->grant(id, bytes); }

CallId Agent::call(const v1::Request& request, CallOptions options, Callback<v1::Response> done) {
  switch (request.kind_case()) {
    case v1::Request::kExec:
    case v1::Request::kFileRead:
    case v1::Request::kFileWrite:
    case v1::Request::kHello:
    case v1::Request::KIND_NOT_SET:
      return refuse(*link_, std::move(done),
                    Error(ErrorKind::kInvalidArgument,
                          "call() takes single-answer requests: use exec(), upload() or download()"));
    default: break;
  }
  return link_->submit(std::make_unique<detail::UnaryCall>(request, std::move(done)), options);
}

Result<v1::Response> Agent::call(const v1::Request& request, CallOptions options) {
  return block<v1::Response>(*link_, [&](Callback<v1::Response> cb) { call(request, options, std::move(cb)); });
}

#define QTX_HOST_DEFINE_TYPED_CALL(method, Req, Resp, req_field, resp_field)                              \
  CallId Agent::method(const Req& request, CallOptions options, Callback<Resp> done) {                    \
    v1::Request r;                                                                                        \
    *r.mutable_##req_field() = request;                                                                   \
    auto unwrap = [done = std::move(done)](Result<v1::Response> res) {                                    \
      if (!done) return;                                                                                  \
      if (!res) return done(res.error());                                                                 \
      if (!res->has_##resp_field()) {                                                                     \
        return done(Error(ErrorKind::kProtocol, #method ": the agent answered with an unexpected kind")); \
      }                                                                                                   \
      done(std::move(*res->mutable_##resp_field()));                                                      \
    };                                                                                                    \
    return link_->submit(std::make_unique<detail::UnaryCall>(std::move(r), std::move(unwrap)), options);  \
  }                                                                                                       \
  Result<Resp> Agent::method(const Req& request, CallOptions options) {                                   \
    return block<Resp>(*link_, [&](Callback<Resp> cb) { method(request, options, std::move(cb)); });      \
  }

QTX_HOST_DEFINE_TYPED_CALL(ping, v1::PingRequest, v1::PingResponse, ping, ping)
QTX_HOST_DEFINE_TYPED_CALL(info, v1::InfoRequest, v1::InfoResponse, info, info)
QTX_HOST_DEFINE_TYPED_CALL(telemetry_config, v1::TelemetryConfigRequest, v1::TelemetryConfigResponse, telemetry_config,
                           telemetry_config)
QTX_HOST_DEFINE_TYPED_CALL(file_stat, v1::FileStatRequest, v1::FileStat, file_stat, file_stat)
QTX_HOST_DEFINE_TYPED_CALL(file_list, v1::FileListRequest, v1::FileListResponse, file_list, file_list)
QTX_HOST_DEFINE_TYPED_CALL(file_mkdir, v1::FileMkdirRequest, v1::Empty, file_mkdir, done)
QTX_HOST_DEFINE_TYPED_CALL(file_remove, v1::FileRemoveRequest, v1::Empty, file_remove, done)
QTX_HOST_DEFINE_TYPED_CALL(file_set_attr, v1::FileSetAttrRequest, v1::Empty, file_set_attr, done)
QTX_HOST_DEFINE_TYPED_CALL(file_hash, v1::FileHashRequest, v1::FileHashResponse, file_hash, file_hash)
QTX_HOST_DEFINE_TYPED_CALL(power, v1::PowerRequest, v1::Empty, power, done)
QTX_HOST_DEFINE_TYPED_CALL(freeze, v1::FreezeRequest, v1::FreezeResponse, freeze, freeze)
QTX_HOST_DEFINE_TYPED_CALL(thaw, v1::ThawRequest, v1::Empty, thaw, done)
QTX_HOST_DEFINE_TYPED_CALL(freeze_status, v1::FreezeStatusRequest, v1::FreezeStatusResponse, freeze_status,
                           freeze_status)
QTX_HOST_DEFINE_TYPED_CALL(set_password, v1::SetPasswordRequest, v1::Empty, set_password, done)
QTX_HOST_DEFINE_TYPED_CALL(ssh_keys, v1::SshKeysRequest, v1::SshKeysResponse, ssh_keys, ssh_keys)
QTX_HOST_DEFINE_TYPED_CALL(time_get, v1::TimeGetRequest, v1::TimeGetResponse, time_get, time_get)
QTX_HOST_DEFINE_TYPED_CALL(time_set, v1::TimeSetRequest, v1::Empty, time_set, done)
QTX_HOST_DEFINE_TYPED_CALL(hostname_get, v1::HostnameGetRequest, v1::HostnameGetResponse, hostname_get, hostname_get)
QTX_HOST_DEFINE_TYPED_CALL(hostname_set, v1::HostnameSetRequest, v1::Empty, hostname_set, done)
QTX_HOST_DEFINE_TYPED_CALL(network, v1::NetworkRequest, v1::NetworkResponse, network, network)
QTX_HOST_DEFINE_TYPED_CALL(process_list, v1::ProcessListRequest, v1::ProcessListResponse, process_list, process_list)
QTX_HOST_DEFINE_TYPED_CALL(process_kill, v1::ProcessKillRequest, v1::Empty, process_kill, done)
#undef QTX_HOST_DEFINE_TYPED_CALL

Result<v1::Empty> Agent::time_sync(bool hwclock, CallOptions options) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  v1::TimeSetRequest req;
  req.set_unix_time_ns(static_cast<std::int64_t>(now.tv_sec) * 1000000000LL + now.tv_nsec);
  req.set_hwclock(hwclock);
  return time_set(req, options);
}

// --- exec ----------------------------------------------------------------------------

CallId Agent::exec(const v1::ExecRequest& request, ExecStreams streams, CallOptions options,
                   Callback<ExecOutcome> done) {
  if (request.argv_size() == 0 || request.argv(0).empty()) {
    return refuse(*link_, std::move(done), Error(ErrorKind::kInvalidArgument, "exec: no program given"));
  }
  if (streams.paced_output && (!streams.on_stdout || !streams.on_stderr)) {
    return refuse(*link_, std::move(done),
                  Error(ErrorKind::kInvalidArgument,
                        "exec: paced_output needs both stream callbacks (collected output is never granted)"));
  }
  return link_->submit(std::make_unique<detail::ExecCall>(request, std::move(streams), std::move(done)), options);
}

Result<ExecOutcome> Agent::exec(const v1::ExecRequest& request, ExecStreams streams, CallOptions options) {
  if (streams.paced_output) {
    return Error(ErrorKind::kInvalidArgument, "exec: paced_output needs the asynchronous form (its CallId, to grant)");
  }
  return block<ExecOutcome>(*link_, [&](Callback<ExecOutcome> cb) {
    exec(request, std::move(streams), options, std::move(cb));
  });
}

// --- uploads ---------------------------------------------------------------------------

CallId Agent::upload(UploadSource source, std::uint64_t total, const v1::FileWriteRequest& request,
                     TransferOptions transfer, CallOptions options, Callback<TransferResult> done) {
  if (request.path().empty()) {
    return refuse(*link_, std::move(done), Error(ErrorKind::kInvalidArgument, "upload: no guest path given"));
  }
  return link_->submit(std::make_unique<detail::UploadCall>(std::move(source), total, request, std::move(transfer),
                                                            std::move(done)),
                       options);
}

Result<TransferResult> Agent::upload_file(const std::string& local_path, const v1::FileWriteRequest& request,
                                          TransferOptions transfer, CallOptions options) {
  // Shared by the source and its completion; closed when the last lets go.
  auto fd = std::make_shared<UniqueFd>(::open(local_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd->valid()) return local_errno(local_path, errno);
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return local_errno(local_path, errno);
  if (S_ISDIR(st.st_mode)) return Error(ErrorKind::kLocal, local_path + ": is a directory");
  UploadSource source = [fd, local_path](char* buf, std::size_t n) -> Result<std::size_t> {
    for (;;) {
      ssize_t r = ::read(fd->get(), buf, n);
      if (r >= 0) return static_cast<std::size_t>(r);
      if (errno != EINTR) return local_errno("reading " + local_path, errno);
    }
  };
  const std::uint64_t total = S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
  return block<TransferResult>(*link_, [&](Callback<TransferResult> cb) {
    upload(std::move(source), total, request, std::move(transfer), options, std::move(cb));
  });
}

Result<TransferResult> Agent::upload_bytes(std::string data, const v1::FileWriteRequest& request,
                                           TransferOptions transfer, CallOptions options) {
  auto owned = std::make_shared<std::string>(std::move(data));
  auto pos = std::make_shared<std::size_t>(0);
  UploadSource source = [owned, pos](char* buf, std::size_t n) -> Result<std::size_t> {
    const std::size_t k = std::min(n, owned->size() - *pos);
    std::memcpy(buf, owned->data() + *pos, k);
    *pos += k;
    return k;
  };
  const std::uint64_t total = owned->size();
  return block<TransferResult>(*link_, [&](Callback<TransferResult> cb) {
    upload(std::move(source), total, request, std::move(transfer), options, std::move(cb));
  });
}

// --- downloads ---------------------------------------------------------------------------

CallId Agent::download(const v1::FileReadRequest& request, DownloadSink sink, TransferOptions transfer,
                       CallOptions options, Callback<TransferResult> done) {
  if (request.path().empty()) {
    return refuse(*link_, std::move(done), Error(ErrorKind::kInvalidArgument, "download: no guest path given"));
  }
  return link_->submit(std::make_unique<detail::DownloadCall>(request, std::move(sink), std::move(transfer),
                                                              std::move(done)),
                       options);
}

Result<TransferResult> Agent::download_file(const v1::FileReadRequest& request, const std::string& local_path,
                                            TransferOptions transfer, CallOptions options) {
  if (transfer.paced) return paced_needs_async();
  // Into a temporary beside the target, renamed over it on success.
  std::string tmp = local_path + ".qtx-partial-XXXXXX";
  auto fd = std::make_shared<UniqueFd>(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd->valid()) return local_errno("creating a temporary beside " + local_path, errno);
  ::fchmod(fd->get(), 0644);
  DownloadSink sink = [fd, tmp](std::string_view data) -> Result<void> {
    while (!data.empty()) {
      ssize_t w = ::write(fd->get(), data.data(), data.size());
      if (w < 0) {
        if (errno == EINTR) continue;
        return local_errno("writing " + tmp, errno);
      }
      data.remove_prefix(static_cast<std::size_t>(w));
    }
    return {};
  };
  Result<TransferResult> r = block<TransferResult>(*link_, [&](Callback<TransferResult> cb) {
    download(request, std::move(sink), std::move(transfer), options, std::move(cb));
  });
  if (r && ::fsync(fd->get()) != 0) r = local_errno("writing " + tmp, errno);
  if (r && ::rename(tmp.c_str(), local_path.c_str()) != 0) r = local_errno("renaming to " + local_path, errno);
  if (!r) ::unlink(tmp.c_str());
  return r;
}

Result<TransferResult> Agent::download_bytes(const v1::FileReadRequest& request, std::string* out,
                                             TransferOptions transfer, CallOptions options) {
  if (transfer.paced) return paced_needs_async();
  DownloadSink sink = [out](std::string_view data) -> Result<void> {
    out->append(data);
    return {};
  };
  return block<TransferResult>(*link_, [&](Callback<TransferResult> cb) {
    download(request, std::move(sink), std::move(transfer), options, std::move(cb));
  });
}

}  // namespace qtx::host

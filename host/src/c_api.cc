// The C API (qtx/host.h) over the C++ API: opaque handles, error codes and
// C callbacks with user data. Every entry point is noexcept and runs what
// can throw inside a guard (c_api_support.h): no exception crosses into C.
#include "qtx/host.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>

#include "c_api_support.h"
#include "envelope_json.h"
#include "qtx/host/manager.h"
#include "qtx/host/metrics.h"

struct qtx_manager {
  qtx::host::Manager manager;
};

struct qtx_metrics_server {
  std::unique_ptr<qtx::host::MetricsServer> server;
};

qtx::host::json::EnvelopeJson& qtx::host::c_api::json_codec() {
  static qtx::host::json::EnvelopeJson codec;
  return codec;
}

namespace {

namespace v1 = ::qtx::agent::v1;
using qtx::host::Error;
using qtx::host::ErrorKind;
using namespace qtx::host::c_api;

static_assert(QTX_STATE_CLOSED == static_cast<int>(qtx::host::State::kClosed), "C and C++ states must agree");

qtx::host::MetricsFormat metrics_format(int format) {
  return format == QTX_METRICS_OPENMETRICS ? qtx::host::MetricsFormat::kOpenMetrics
                                           : qtx::host::MetricsFormat::kPrometheusText;
}

void copy_hex(char* out, const std::string& hex) {
  if (out != nullptr) std::snprintf(out, 65, "%s", hex.c_str());
}

// qtx_agent_options as released in 0.1: up to `user`.
constexpr std::size_t kAgentOptionsOldest = QTX_STRUCT_SIZE_UP_TO(qtx_agent_options, user);

std::optional<std::string> to_json_or_nothing(const google::protobuf::MessageLite& m) noexcept {
  try {
    std::string json;
    if (json_codec().message_to_json(m, &json)) return json;
  } catch (...) {
  }
  return std::nullopt;
}

Error no_agent(const char* fn) { return Error(ErrorKind::kInvalidArgument, std::string(fn) + ": agent is NULL"); }

#define QTX_STR2(x) #x
#define QTX_STR(x) QTX_STR2(x)
constexpr const char kVersionString[] =
    QTX_STR(QTX_VERSION_MAJOR) "." QTX_STR(QTX_VERSION_MINOR) "." QTX_STR(QTX_VERSION_PATCH);

}  // namespace

extern "C" {

uint32_t qtx_version(void) noexcept { return QTX_VERSION; }

const char* qtx_version_string(void) noexcept { return kVersionString; }

const char* qtx_error_kind_name(int kind) noexcept {
  if (kind == QTX_OK) return "ok";
  const qtx::host::detail::KindRow* row = qtx::host::detail::kind_row_of_c_code(kind);
  return row ? row->name : "unknown";
}

// state_name covers every State and returns a literal; an unknown value
// gives its "unknown".
const char* qtx_state_name(qtx_state state) noexcept {
  return qtx::host::state_name(static_cast<qtx::host::State>(state));
}

void qtx_free(void* p) noexcept { std::free(p); }

qtx_manager* qtx_manager_new(void) noexcept {
  return guarded_or<qtx_manager*>(nullptr, [] { return new qtx_manager; });
}

// ~Manager closes its agents and joins the I/O thread; it does not throw
// (destructors are noexcept), so neither does this.
void qtx_manager_free(qtx_manager* manager) noexcept { delete manager; }

qtx_agent* qtx_agent_add(qtx_manager* manager, const qtx_agent_options* caller_options, qtx_error* err) noexcept {
  if (manager == nullptr || caller_options == nullptr) {
    fail_raw(err, QTX_ERR_INVALID_ARGUMENT, "", "qtx_agent_add: manager, options and socket_path are required");
    return nullptr;
  }
  qtx_agent_options copy;
  if (read_struct(caller_options, kAgentOptionsOldest, "qtx_agent_options", &copy, err) != QTX_OK) return nullptr;
  const qtx_agent_options* options = &copy;
  if (options->socket_path == nullptr) {
    fail_raw(err, QTX_ERR_INVALID_ARGUMENT, "", "qtx_agent_add: manager, options and socket_path are required");
    return nullptr;
  }
  qtx_agent* out = nullptr;
  guarded(err, [&] {
    qtx::host::AgentOptions o;
    o.endpoint = options->listen ? qtx::host::Endpoint::listen(options->socket_path)
                                 : qtx::host::Endpoint::connect(options->socket_path);
    if (options->handshake_timeout_ms) o.handshake_timeout = ms(options->handshake_timeout_ms);
    if (options->keepalive_interval_ms) o.keepalive_interval = ms(options->keepalive_interval_ms);
    if (options->keepalive_timeout_ms) o.keepalive_timeout = ms(options->keepalive_timeout_ms);
    if (options->write_timeout_ms) o.write_timeout = ms(options->write_timeout_ms);
    o.client_name = "libqtx-host (C)";
    void* user = options->user;
    if (auto cb = options->on_state) {
      o.callbacks.on_state = [cb, user](qtx::host::State s, const Error* cause) {
        if (cause == nullptr) return call_back(cb, user, static_cast<qtx_state>(s), nullptr);
        qtx_error e;
        fill(&e, *cause);
        call_back(cb, user, static_cast<qtx_state>(s), &e);
      };
    }
    if (auto cb = options->on_restarted) {
      o.callbacks.on_agent_restarted = [cb, user](const v1::AgentIdentity& now, const v1::AgentIdentity& before) {
        call_back(cb, user, now.instance_id().c_str(), before.instance_id().c_str());
      };
    }
    // A message that cannot be converted (out of memory) is dropped: the
    // callbacks run on the I/O thread, where nothing may throw.
    if (auto cb = options->on_telemetry_json) {
      o.callbacks.on_telemetry = [cb, user](const v1::TelemetrySample& s) {
        if (auto json = to_json_or_nothing(s)) call_back(cb, user, json->c_str());
      };
    }
    if (auto cb = options->on_event_json) {
      o.callbacks.on_event = [cb, user](const v1::Event& e) {
        if (auto json = to_json_or_nothing(e)) call_back(cb, user, json->c_str());
      };
    }
    auto added = manager->manager.add(std::move(o));
    if (!added) return fail(err, added.error());
    out = new qtx_agent{added.value()};
    return succeed(err);
  });
  return out;
}

// close() posts to the I/O thread and waits; should it throw (it allocates),
// the handle is still released and the Agent closes with its manager.
void qtx_agent_free(qtx_agent* agent) noexcept {
  if (agent == nullptr) return;
  guarded(nullptr, [&] {
    agent->agent->close();
    return QTX_OK;
  });
  delete agent;
}

qtx_state qtx_agent_state(const qtx_agent* agent) noexcept {
  if (agent == nullptr) return QTX_STATE_CLOSED;
  return guarded_or(QTX_STATE_CLOSED, [&] { return static_cast<qtx_state>(agent->agent->state()); });
}

int qtx_agent_wait_ready(qtx_agent* agent, uint32_t timeout_ms, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (agent == nullptr) return fail(err, no_agent("qtx_agent_wait_ready"));
    auto r = agent->agent->wait_ready(ms(timeout_ms));
    return r ? succeed(err) : fail(err, r.error());
  });
}

int qtx_agent_ping(qtx_agent* agent, uint32_t timeout_ms, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (agent == nullptr) return fail(err, no_agent("qtx_agent_ping"));
    auto r = agent->agent->ping({}, {.timeout = ms(timeout_ms)});
    return r ? succeed(err) : fail(err, r.error());
  });
}

int qtx_agent_call_json(qtx_agent* agent, const char* request_json, uint32_t timeout_ms, char** response_json,
                        qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (agent == nullptr) return fail(err, no_agent("qtx_agent_call_json"));
    if (request_json == nullptr || response_json == nullptr) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_call_json: request and response are required"));
    }
    v1::Request req;
    std::string why;
    if (!json_codec().json_to_message(request_json, &req, &why)) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "request JSON: " + why));
    }
    auto r = agent->agent->call(req, {.timeout = ms(timeout_ms)});
    if (!r) return fail(err, r.error());
    std::string json;
    json_codec().message_to_json(*r, &json);
    *response_json = dup_string(json);
    return succeed(err);
  });
}

int qtx_agent_identity_json(qtx_agent* agent, char** identity_json, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (agent == nullptr) return fail(err, no_agent("qtx_agent_identity_json"));
    if (identity_json == nullptr) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_identity_json: identity_json is required"));
    }
    auto id = agent->agent->identity();
    if (!id) return fail(err, Error(ErrorKind::kNotFound, "no handshake has completed"));
    std::string json;
    json_codec().message_to_json(*id, &json);
    *identity_json = dup_string(json);
    return succeed(err);
  });
}

int qtx_agent_latest_telemetry_json(qtx_agent* agent, char** sample_json, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (agent == nullptr) return fail(err, no_agent("qtx_agent_latest_telemetry_json"));
    if (sample_json == nullptr) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_latest_telemetry_json: sample_json is required"));
    }
    auto s = agent->agent->latest_telemetry();
    if (!s) return fail(err, Error(ErrorKind::kNotFound, "no telemetry sample has arrived"));
    std::string json;
    json_codec().message_to_json(*s, &json);
    *sample_json = dup_string(json);
    return succeed(err);
  });
}

}  // extern "C"

namespace {

// Runs req to completion with on_output (may be null) as both streams.
qtx::host::Result<qtx::host::ExecOutcome> run_exec(qtx_agent* agent, const v1::ExecRequest& req, uint32_t timeout_ms,
                                                   void (*on_output)(void* user, int stream, const char* data,
                                                                     size_t n),
                                                   void* user) {
  qtx::host::ExecStreams streams;
  if (on_output != nullptr) {
    streams.on_stdout = [on_output, user](std::string_view d) { call_back(on_output, user, 1, d.data(), d.size()); };
    streams.on_stderr = [on_output, user](std::string_view d) { call_back(on_output, user, 2, d.data(), d.size()); };
  }
  return agent->agent->exec(req, streams, {.timeout = ms(timeout_ms)});
}

}  // namespace

extern "C" {

int qtx_agent_exec(qtx_agent* agent, const char* const* argv, const char* stdin_data, size_t stdin_len,
                   uint32_t timeout_ms, void (*on_output)(void* user, int stream, const char* data, size_t n),
                   void* user, int* exit_code, int* signal, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (agent == nullptr) return fail(err, no_agent("qtx_agent_exec"));
    if (argv == nullptr || argv[0] == nullptr) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_exec: argv is empty"));
    }
    v1::ExecRequest req;
    for (const char* const* a = argv; *a != nullptr; ++a) req.add_argv(*a);
    if (stdin_data != nullptr && stdin_len > 0) req.set_stdin(stdin_data, stdin_len);
    auto r = run_exec(agent, req, timeout_ms, on_output, user);
    if (!r) return fail(err, r.error());
    const auto& x = r->result;
    if (exit_code != nullptr) *exit_code = x.has_exit_code() ? x.exit_code() : -1;
    if (signal != nullptr) *signal = x.has_signal() ? x.signal() : 0;
    return succeed(err);
  });
}

int qtx_agent_exec_json(qtx_agent* agent, const char* request_json, const char* stdin_data, size_t stdin_len,
                        uint32_t timeout_ms, void (*on_output)(void* user, int stream, const char* data, size_t n),
                        void* user, char** result_json, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (agent == nullptr) return fail(err, no_agent("qtx_agent_exec_json"));
    if (request_json == nullptr || result_json == nullptr) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_exec_json: request and result are required"));
    }
    v1::ExecRequest req;
    std::string why;
    if (!json_codec().json_to_message(request_json, &req, &why)) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "exec request JSON: " + why));
    }
    if (req.argv().empty()) return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_exec_json: argv is empty"));
    if (req.stdin_stream()) {
      return fail(err, Error(ErrorKind::kInvalidArgument,
                             "qtx_agent_exec_json: stdin_stream is not available through the C API"));
    }
    if (stdin_data != nullptr) req.set_stdin(stdin_data, stdin_len);
    auto r = run_exec(agent, req, timeout_ms, on_output, user);
    if (!r) return fail(err, r.error());
    std::string json;
    json_codec().message_to_json(r->result, &json);
    *result_json = dup_string(json);
    return succeed(err);
  });
}

int qtx_agent_upload(qtx_agent* agent, const char* local_path, const char* guest_path, uint32_t mode,
                     void (*on_progress)(void* user, uint64_t bytes, uint64_t total), void* user, char* sha256_hex,
                     qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (agent == nullptr) return fail(err, no_agent("qtx_agent_upload"));
    if (local_path == nullptr || guest_path == nullptr) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_upload: both paths are required"));
    }
    v1::FileWriteRequest w;
    w.set_path(guest_path);
    w.set_mode(mode);
    w.set_atomic(true);
    qtx::host::TransferOptions t;
    if (on_progress != nullptr) {
      t.on_progress = [on_progress, user](const qtx::host::TransferProgress& p) {
        call_back(on_progress, user, p.bytes, p.total);
      };
    }
    auto r = agent->agent->upload_file(local_path, w, t);
    if (!r) return fail(err, r.error());
    copy_hex(sha256_hex, r->sha256_hex);
    return succeed(err);
  });
}

int qtx_agent_download(qtx_agent* agent, const char* guest_path, const char* local_path,
                       void (*on_progress)(void* user, uint64_t bytes, uint64_t total), void* user, char* sha256_hex,
                       qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (agent == nullptr) return fail(err, no_agent("qtx_agent_download"));
    if (local_path == nullptr || guest_path == nullptr) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_download: both paths are required"));
    }
    v1::FileReadRequest rd;
    rd.set_path(guest_path);
    qtx::host::TransferOptions t;
    if (on_progress != nullptr) {
      t.on_progress = [on_progress, user](const qtx::host::TransferProgress& p) {
        call_back(on_progress, user, p.bytes, p.total);
      };
    }
    auto r = agent->agent->download_file(rd, local_path, t);
    if (!r) return fail(err, r.error());
    copy_hex(sha256_hex, r->sha256_hex);
    return succeed(err);
  });
}

}  // extern "C"

// --- metrics ---------------------------------------------------------------------

extern "C" {

int qtx_manager_render_metrics(qtx_manager* manager, int format, char** out, qtx_error* err) noexcept {
  if (manager == nullptr || out == nullptr ||
      (format != QTX_METRICS_PROMETHEUS_TEXT && format != QTX_METRICS_OPENMETRICS)) {
    return fail_raw(err, QTX_ERR_INVALID_ARGUMENT, "",
                    "qtx_manager_render_metrics: manager, out and a QTX_METRICS_* format are required");
  }
  return guarded(err, [&] {
    *out = dup_string(qtx::host::render_metrics(manager->manager, metrics_format(format)));
    if (*out == nullptr) return fail(err, Error(ErrorKind::kLocal, "out of memory"));
    return succeed(err);
  });
}

const char* qtx_metrics_content_type(int format) noexcept {
  return qtx::host::metrics_content_type(metrics_format(format));
}

qtx_metrics_server* qtx_metrics_server_start(qtx_manager* manager, const char* address, int* port,
                                             qtx_error* err) noexcept {
  if (manager == nullptr || address == nullptr) {
    fail_raw(err, QTX_ERR_INVALID_ARGUMENT, "", "qtx_metrics_server_start: manager and address are required");
    return nullptr;
  }
  qtx_metrics_server* out = nullptr;
  guarded(err, [&] {
    auto started = qtx::host::MetricsServer::start(manager->manager, address);
    if (!started) return fail(err, started.error());
    if (port != nullptr) *port = started.value()->port();
    out = new qtx_metrics_server{std::move(started.value())};
    return succeed(err);
  });
  return out;
}

void qtx_metrics_server_free(qtx_metrics_server* server) noexcept { delete server; }

}  // extern "C"

// --- 0.2: cancellation, requests with options, asynchronous requests, stats ----

namespace {

int request_from_json(const char* fn, const char* request_json, v1::Request* req, qtx_error* err) {
  if (request_json == nullptr) return fail(err, Error(ErrorKind::kInvalidArgument, std::string(fn) + ": no request"));
  std::string why;
  if (!json_codec().json_to_message(request_json, req, &why)) {
    return fail(err, Error(ErrorKind::kInvalidArgument, "request JSON: " + why));
  }
  return QTX_OK;
}

// A caller's qtx_call_options (NULL: no deadline, no token) as CallOptions.
int read_call_options(const qtx_call_options* in, qtx::host::CallOptions* out, qtx_error* err) {
  if (in == nullptr) {
    *out = call_options(0, nullptr);
    return QTX_OK;
  }
  qtx_call_options copy;
  if (int rc = read_struct(in, sizeof(qtx_call_options), "qtx_call_options", &copy, err); rc != QTX_OK) return rc;
  *out = call_options(copy.timeout_ms, copy.cancel);
  return QTX_OK;
}

void append_array(std::string* out, const char* name, const std::uint64_t* v, std::size_t n) {
  *out += ",\"";
  *out += name;
  *out += "\":[";
  for (std::size_t i = 0; i < n; ++i) {
    if (i) *out += ',';
    *out += std::to_string(v[i]);
  }
  *out += ']';
}

std::string stats_json(const qtx::host::AgentStats& s) {
  std::string out = "{";
  bool first = true;
  auto field = [&](const char* name, std::uint64_t v) {
    if (!first) out += ',';
    first = false;
    out += '"';
    out += name;
    out += "\":" + std::to_string(v);
  };
  field("connects", s.connects);
  field("handshakes", s.handshakes);
  field("restarts_seen", s.restarts_seen);
  field("discarded_frames", s.discarded_frames);
  field("stray_frames", s.stray_frames);
  field("dropped_bytes", s.dropped_bytes);
  field("bytes_in", s.bytes_in);
  field("bytes_out", s.bytes_out);
  field("telemetry_samples", s.telemetry_samples);
  field("decoder_bytes_hashed", s.decoder_bytes_hashed);
  field("connect_attempts", s.connect_attempts);
  field("disconnects", s.disconnects);
  field("frames_in", s.frames_in);
  field("frames_out", s.frames_out);
  field("keepalive_pings", s.keepalive_pings);
  field("keepalive_timeouts", s.keepalive_timeouts);
  field("calls_in_flight", s.calls_in_flight);
  field("callback_exceptions", s.callback_exceptions);
  append_array(&out, "dropped_bytes_by_reason", s.dropped_bytes_by_reason.data(), s.dropped_bytes_by_reason.size());
  append_array(&out, "calls_ended", s.calls_ended.data(), s.calls_ended.size());
  append_array(&out, "rtt_buckets", s.rtt_buckets.data(), s.rtt_buckets.size());
  char sum[64];
  std::snprintf(sum, sizeof(sum), ",\"rtt_sum_seconds\":%.9g}", s.rtt_sum_seconds);
  out += sum;
  return out;
}

void fill_transfer_result(const qtx::host::TransferResult& r, uint64_t* bytes, char* sha256_hex) {
  if (bytes != nullptr) *bytes = r.bytes;
  copy_hex(sha256_hex, r.sha256_hex);
}

}  // namespace

extern "C" {

qtx_cancel* qtx_cancel_new(void) noexcept {
  return guarded_or<qtx_cancel*>(nullptr, [] { return new qtx_cancel{qtx::host::CancelToken::create()}; });
}

// fire() allocates nothing; the hooks it runs post to I/O threads, which
// may fail only when a manager is gone (then there is nothing to cancel).
void qtx_cancel_fire(qtx_cancel* cancel) noexcept {
  if (cancel == nullptr) return;
  guarded(nullptr, [&] {
    cancel->token->fire();
    return QTX_OK;
  });
}

int qtx_cancel_fired(const qtx_cancel* cancel) noexcept {
  if (cancel == nullptr) return 0;
  return guarded_or(0, [&] { return cancel->token->fired() ? 1 : 0; });
}

void qtx_cancel_free(qtx_cancel* cancel) noexcept { delete cancel; }

int qtx_agent_request_json(qtx_agent* agent, const char* request_json, const qtx_call_options* options,
                           char** response_json, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (agent == nullptr) return fail(err, no_agent("qtx_agent_request_json"));
    if (response_json == nullptr) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_request_json: response_json is required"));
    }
    qtx::host::CallOptions call;
    if (int rc = read_call_options(options, &call, err); rc != QTX_OK) return rc;
    v1::Request req;
    if (int rc = request_from_json("qtx_agent_request_json", request_json, &req, err); rc != QTX_OK) return rc;
    auto r = agent->agent->call(req, call);
    if (!r) return fail(err, r.error());
    std::string json;
    json_codec().message_to_json(*r, &json);
    *response_json = dup_string(json);
    if (*response_json == nullptr) return fail(err, Error(ErrorKind::kLocal, "out of memory"));
    return succeed(err);
  });
}

int qtx_agent_request_json_async(qtx_agent* agent, const char* request_json, const qtx_call_options* options,
                                 qtx_response_fn done, void* user, uint64_t* call_id, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (agent == nullptr) return fail(err, no_agent("qtx_agent_request_json_async"));
    if (done == nullptr) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_request_json_async: done is required"));
    }
    qtx::host::CallOptions call;
    if (int rc = read_call_options(options, &call, err); rc != QTX_OK) return rc;
    v1::Request req;
    if (int rc = request_from_json("qtx_agent_request_json_async", request_json, &req, err); rc != QTX_OK) return rc;
    if (req.has_exec() || req.has_file_read() || req.has_file_write()) {
      return fail(err, Error(ErrorKind::kInvalidArgument,
                             "qtx_agent_request_json_async: exec and file transfers are streamed: use their handles"));
    }
    // The callback converts on the I/O thread; a conversion that runs out
    // of memory still ends the call, as a local error.
    const qtx::host::CallId id =
        agent->agent->call(req, call, [done, user](qtx::host::Result<v1::Response> r) noexcept {
          qtx_error e;
          if (!r) {
            fill(&e, r.error());
            return call_back(done, user, nullptr, &e);
          }
          if (auto json = to_json_or_nothing(*r)) return call_back(done, user, json->c_str(), nullptr);
          fail_raw(&e, QTX_ERR_LOCAL, "out of memory", "");
          call_back(done, user, nullptr, &e);
        });
    if (call_id != nullptr) *call_id = id;
    return succeed(err);
  });
}

void qtx_agent_cancel_call(qtx_agent* agent, uint64_t call_id) noexcept {
  if (agent == nullptr || call_id == 0) return;
  guarded(nullptr, [&] {
    agent->agent->cancel(call_id);
    return QTX_OK;
  });
}

int qtx_agent_stats_json(qtx_agent* agent, char** out, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (agent == nullptr) return fail(err, no_agent("qtx_agent_stats_json"));
    if (out == nullptr) return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_stats_json: out is required"));
    *out = dup_string(stats_json(agent->agent->stats()));
    if (*out == nullptr) return fail(err, Error(ErrorKind::kLocal, "out of memory"));
    return succeed(err);
  });
}

int qtx_agent_upload_file(qtx_agent* agent, const char* local_path, const char* guest_path,
                          const qtx_transfer_options* options, uint64_t* bytes, char* sha256_hex,
                          qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (agent == nullptr) return fail(err, no_agent("qtx_agent_upload_file"));
    if (local_path == nullptr || guest_path == nullptr) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_upload_file: both paths are required"));
    }
    TransferSetup setup;
    if (int rc = read_transfer_options(options, &setup, err); rc != QTX_OK) return rc;
    v1::FileWriteRequest w;
    w.set_path(guest_path);
    w.set_mode(setup.mode);
    w.set_atomic(true);
    auto r = agent->agent->upload_file(local_path, w, std::move(setup.transfer), setup.call);
    if (!r) return fail(err, r.error());
    fill_transfer_result(*r, bytes, sha256_hex);
    return succeed(err);
  });
}

int qtx_agent_download_file(qtx_agent* agent, const char* guest_path, const char* local_path,
                            const qtx_transfer_options* options, uint64_t* bytes, char* sha256_hex,
                            qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (agent == nullptr) return fail(err, no_agent("qtx_agent_download_file"));
    if (local_path == nullptr || guest_path == nullptr) {
      return fail(err, Error(ErrorKind::kInvalidArgument, "qtx_agent_download_file: both paths are required"));
    }
    TransferSetup setup;
    if (int rc = read_transfer_options(options, &setup, err); rc != QTX_OK) return rc;
    v1::FileReadRequest rd;
    rd.set_path(guest_path);
    auto r = agent->agent->download_file(rd, local_path, std::move(setup.transfer), setup.call);
    if (!r) return fail(err, r.error());
    fill_transfer_result(*r, bytes, sha256_hex);
    return succeed(err);
  });
}

}  // extern "C"

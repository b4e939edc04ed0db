// The C API (qtx/host.h) over the C++ API: opaque handles, error codes and
// C callbacks with user data. Every entry point is noexcept and runs what
// can throw inside a guard (c_api_support.h): no exception crosses into C.
#include "qtx/host.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>

#include "c_api_support.h"
#include "envelope_json.h"
#include "qtx/host/manager.h"
#include "qtx/host/metrics.h"

struct qtx_manager {
  qtx::host::Manager manager;
};

struct qtx_agent {
  std::shared_ptr<qtx::host::Agent> agent;
};

struct qtx_metrics_server {
  std::unique_ptr<qtx::host::MetricsServer> server;
};

namespace {

namespace v1 = ::qtx::agent::v1;
using qtx::host::Error;
using qtx::host::ErrorKind;
using namespace qtx::host::c_api;

static_assert(QTX_STATE_CLOSED == static_cast<int>(qtx::host::State::kClosed), "C and C++ states must agree");

// One schema pool for every JSON conversion; lookups are thread-safe.
qtx::host::json::EnvelopeJson& json_codec() {
  static qtx::host::json::EnvelopeJson codec;
  return codec;
}

qtx::host::MetricsFormat metrics_format(int format) {
  return format == QTX_METRICS_OPENMETRICS ? qtx::host::MetricsFormat::kOpenMetrics
                                           : qtx::host::MetricsFormat::kPrometheusText;
}

void copy_hex(char* out, const std::string& hex) {
  if (out != nullptr) std::snprintf(out, 65, "%s", hex.c_str());
}

// qtx_agent_options as released in 0.1: up to `user`.
constexpr std::size_t kAgentOptionsOldest = QTX_STRUCT_SIZE_UP_TO(qtx_agent_options, user);

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
        if (cause == nullptr) return cb(user, static_cast<qtx_state>(s), nullptr);
        qtx_error e;
        fill(&e, *cause);
        cb(user, static_cast<qtx_state>(s), &e);
      };
    }
    if (auto cb = options->on_restarted) {
      o.callbacks.on_agent_restarted = [cb, user](const v1::AgentIdentity& now, const v1::AgentIdentity& before) {
        cb(user, now.instance_id().c_str(), before.instance_id().c_str());
      };
    }
    if (auto cb = options->on_telemetry_json) {
      // A sample that cannot be converted (out of memory) is dropped: the
      // callback runs on the I/O thread, where nothing may throw.
      o.callbacks.on_telemetry = [cb, user](const v1::TelemetrySample& s) {
        std::string json;
        bool converted = false;
        try {
          converted = json_codec().message_to_json(s, &json);
        } catch (...) {
        }
        if (converted) cb(user, json.c_str());
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
    streams.on_stdout = [on_output, user](std::string_view d) { on_output(user, 1, d.data(), d.size()); };
    streams.on_stderr = [on_output, user](std::string_view d) { on_output(user, 2, d.data(), d.size()); };
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
        on_progress(user, p.bytes, p.total);
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
        on_progress(user, p.bytes, p.total);
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

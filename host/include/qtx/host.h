/* libqtx-host C API: the agents of many VMs from C, Go, Rust or Python.
 *
 * Handles are opaque. Functions that can fail return 0 on success or a
 * qtx_error_kind, and fill *err (when err is not NULL) with the kind, the
 * agent's error code, the errno and a message. Calls block the calling
 * thread (call them from threads of your own for concurrency; each blocks
 * only its caller); callbacks run on the manager's I/O thread, must not
 * block, and must not call blocking functions of this API (those fail with
 * QTX_ERR_INVALID_ARGUMENT there). Strings the library returns through
 * char** are malloc'ed: release them with qtx_free().
 *
 * Messages that have no C struct here (info, telemetry, every other
 * request) travel as proto3 JSON of the qtx.agent.v1 schema: see
 * qtx_agent_call_json().
 *
 * ABI (docs/abi.md): libqtx-host.so.N keeps every function and struct
 * layout of this header for as long as N stays the same. Option structs
 * begin with struct_size: set it with their init function, which also
 * zeroes every other field (zero asks for the default), so a program built
 * against this header runs with later libraries of the same N. No C++
 * exception leaves any function here. */
#ifndef QTX_HOST_H
#define QTX_HOST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h> /* memset, for the init functions */

#if defined(QTX_HOST_BUILDING)
#define QTX_C_API __attribute__((visibility("default")))
#else
#define QTX_C_API
#endif

/* Every function of the C API is noexcept when seen from C++. */
#ifdef __cplusplus
#define QTX_NOEXCEPT noexcept
#else
#define QTX_NOEXCEPT
#endif

/* The version of this header. qtx_version() gives the library's. */
#define QTX_VERSION_MAJOR 0 /* the soname's: libqtx-host.so.0 */
#define QTX_VERSION_MINOR 1
#define QTX_VERSION_PATCH 0
#define QTX_VERSION ((QTX_VERSION_MAJOR << 16) | (QTX_VERSION_MINOR << 8) | QTX_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* The values of qtx::host::ErrorKind; 0 is success. */
typedef enum qtx_error_kind {
  QTX_OK = 0,
  QTX_ERR_DISCONNECTED = 1, /* not ready, or the connection dropped: retry once ready */
  QTX_ERR_TIMEOUT = 2,      /* the deadline passed */
  QTX_ERR_CANCELLED = 3,
  QTX_ERR_DENIED = 4, /* the guest's policy forbids it: do not retry */
  QTX_ERR_UNSUPPORTED = 5,
  QTX_ERR_INVALID_ARGUMENT = 6,
  QTX_ERR_NOT_FOUND = 7,
  QTX_ERR_ALREADY_EXISTS = 8, /* also: the socket already has an owner */
  QTX_ERR_BUSY = 9,           /* back off and retry */
  QTX_ERR_FAILED_PRECONDITION = 10,
  QTX_ERR_GUEST_FAILED = 11,
  QTX_ERR_PROTOCOL = 12,
  QTX_ERR_LOCAL = 13,
  QTX_ERR_CLOSED = 14
} qtx_error_kind;

typedef enum qtx_state {
  QTX_STATE_DISCONNECTED = 0,
  QTX_STATE_CONNECTING = 1,
  QTX_STATE_HANDSHAKING = 2,
  QTX_STATE_READY = 3,
  QTX_STATE_CLOSED = 4
} qtx_state;

typedef struct qtx_error {
  int kind;       /* qtx_error_kind */
  int guest_code; /* qtx.agent.v1.ErrorCode, 0 when the failure is local */
  int os_errno;
  char message[512]; /* NUL-terminated, truncated if longer */
} qtx_error;

typedef struct qtx_manager qtx_manager;
typedef struct qtx_agent qtx_agent;

/* Initialise with qtx_agent_options_init(). Fields added in a later
 * release go at the end, and their zero keeps the old behaviour. */
typedef struct qtx_agent_options {
  size_t struct_size;      /* sizeof(qtx_agent_options) as the caller was compiled */
  const char* socket_path; /* required */
  int listen;              /* 0: connect to QEMU's socket; 1: listen, QEMU connects (server=off) */
  /* 0 selects the default (in parentheses). */
  uint32_t handshake_timeout_ms;  /* 5000 */
  uint32_t keepalive_interval_ms; /* 5000 */
  uint32_t keepalive_timeout_ms;  /* 15000 */
  uint32_t write_timeout_ms;      /* 10000 */
  /* Callbacks, each optional; `user` is passed back. `cause` may be NULL. */
  void (*on_state)(void* user, qtx_state state, const qtx_error* cause);
  void (*on_restarted)(void* user, const char* instance_id, const char* previous_instance_id);
  void (*on_telemetry_json)(void* user, const char* sample_json);
  void* user;
} qtx_agent_options;

/* Zeroes *options and sets struct_size: every default, no callbacks. */
static inline void qtx_agent_options_init(qtx_agent_options* options) {
  memset(options, 0, sizeof(*options));
  options->struct_size = sizeof(*options);
}

/* The library's version, QTX_VERSION's encoding; its major is the soname's.
 * A program may compare it with the QTX_VERSION it was built with. */
QTX_C_API uint32_t qtx_version(void) QTX_NOEXCEPT;
/* The same as "MAJOR.MINOR.PATCH"; static storage. */
QTX_C_API const char* qtx_version_string(void) QTX_NOEXCEPT;

QTX_C_API const char* qtx_error_kind_name(int kind) QTX_NOEXCEPT;
QTX_C_API const char* qtx_state_name(qtx_state state) QTX_NOEXCEPT;
QTX_C_API void qtx_free(void* p) QTX_NOEXCEPT;

/* A manager: one I/O thread for all its agents. Freeing it closes them. */
QTX_C_API qtx_manager* qtx_manager_new(void) QTX_NOEXCEPT;
QTX_C_API void qtx_manager_free(qtx_manager* manager) QTX_NOEXCEPT;

/* Starts connecting; NULL on error (QTX_ERR_ALREADY_EXISTS when the socket
 * already has an owner). Free with qtx_agent_free before the manager. */
QTX_C_API qtx_agent* qtx_agent_add(qtx_manager* manager, const qtx_agent_options* options, qtx_error* err) QTX_NOEXCEPT;
/* Closes the connection; once it returns (off the I/O thread) no callback
 * of this agent runs any more. */
QTX_C_API void qtx_agent_free(qtx_agent* agent) QTX_NOEXCEPT;
QTX_C_API qtx_state qtx_agent_state(const qtx_agent* agent) QTX_NOEXCEPT;
QTX_C_API int qtx_agent_wait_ready(qtx_agent* agent, uint32_t timeout_ms, qtx_error* err) QTX_NOEXCEPT;

/* timeout_ms 0: no deadline. */
QTX_C_API int qtx_agent_ping(qtx_agent* agent, uint32_t timeout_ms, qtx_error* err) QTX_NOEXCEPT;
/* Any single-answer request as JSON, e.g. "{\"hostname_get\":{}}" or
 * "{\"power\":{\"action\":\"ACTION_REBOOT\"}}" (the fields of
 * qtx.agent.v1.Request); *response_json receives the Response's JSON. */
QTX_C_API int qtx_agent_call_json(qtx_agent* agent, const char* request_json, uint32_t timeout_ms, char** response_json,
                                  qtx_error* err) QTX_NOEXCEPT;
/* The identity from the last handshake (version, instance_id, boot_id,
 * capabilities) as JSON, or QTX_ERR_NOT_FOUND before the first one. */
QTX_C_API int qtx_agent_identity_json(qtx_agent* agent, char** identity_json, qtx_error* err) QTX_NOEXCEPT;
/* The last telemetry sample as JSON, or QTX_ERR_NOT_FOUND when none came. */
QTX_C_API int qtx_agent_latest_telemetry_json(qtx_agent* agent, char** sample_json, qtx_error* err) QTX_NOEXCEPT;

/* Runs argv (NULL-terminated) in the guest with `stdin_len` bytes of stdin.
 * Output goes to on_output (stream 1: stdout, 2: stderr) as it arrives.
 * On success *exit_code is the exit status, or -1 with *signal set. */
QTX_C_API int qtx_agent_exec(qtx_agent* agent, const char* const* argv, const char* stdin_data, size_t stdin_len,
                             uint32_t timeout_ms, void (*on_output)(void* user, int stream, const char* data, size_t n),
                             void* user, int* exit_code, int* signal, qtx_error* err) QTX_NOEXCEPT;

/* The same with every field of qtx.agent.v1.ExecRequest, as JSON: env,
 * cwd, user, output_limit, merge_stderr, e.g.
 * {"argv":["/bin/pwd"],"cwd":"/tmp","env":["LANG=C"],"user":"nobody"}.
 * stdin_data, when not NULL, replaces the request's stdin (a bytes field,
 * base64 in JSON); stdin_stream is refused (there is no way to feed it
 * here). *result_json receives the ExecResult (exit_code or signal,
 * timed_out, truncated, duration_ms, ...); release it with qtx_free. */
QTX_C_API int qtx_agent_exec_json(qtx_agent* agent, const char* request_json, const char* stdin_data, size_t stdin_len,
                                  uint32_t timeout_ms,
                                  void (*on_output)(void* user, int stream, const char* data, size_t n), void* user,
                                  char** result_json, qtx_error* err) QTX_NOEXCEPT;

/* File transfers between a local path and a guest path, sha256-checked
 * end to end; sha256_hex (65 bytes, may be NULL) receives the digest.
 * on_progress(user, bytes, total) may be NULL; total is 0 when unknown. */
QTX_C_API int qtx_agent_upload(qtx_agent* agent, const char* local_path, const char* guest_path, uint32_t mode,
                               void (*on_progress)(void* user, uint64_t bytes, uint64_t total), void* user,
                               char* sha256_hex, qtx_error* err) QTX_NOEXCEPT;
QTX_C_API int qtx_agent_download(qtx_agent* agent, const char* guest_path, const char* local_path,
                                 void (*on_progress)(void* user, uint64_t bytes, uint64_t total), void* user,
                                 char* sha256_hex, qtx_error* err) QTX_NOEXCEPT;

/* Metrics of every agent of the manager for Prometheus (docs/metrics.md),
 * from what the manager holds: no guest is asked. *out receives the
 * exposition (release it with qtx_free). */
#define QTX_METRICS_PROMETHEUS_TEXT 0 /* text/plain; version=0.0.4 */
#define QTX_METRICS_OPENMETRICS 1     /* application/openmetrics-text; version=1.0.0 */
QTX_C_API int qtx_manager_render_metrics(qtx_manager* manager, int format, char** out, qtx_error* err) QTX_NOEXCEPT;
/* The Content-Type header for `format` (a static string). */
QTX_C_API const char* qtx_metrics_content_type(int format) QTX_NOEXCEPT;
/* Serves GET /metrics on `address` ("127.0.0.1:9756", "[::1]:0", ":9756")
 * from its own threads until qtx_metrics_server_free, which must come
 * before qtx_manager_free. *port (may be NULL) receives the port bound. */
typedef struct qtx_metrics_server qtx_metrics_server;
QTX_C_API qtx_metrics_server* qtx_metrics_server_start(qtx_manager* manager, const char* address, int* port,
                                                       qtx_error* err) QTX_NOEXCEPT;
QTX_C_API void qtx_metrics_server_free(qtx_metrics_server* server) QTX_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* QTX_HOST_H */

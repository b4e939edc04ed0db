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
#define QTX_VERSION_MINOR 2
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
  /* Since 0.2. Every event the agent pushes (telemetry included; freeze
   * state changes, telemetry drops) as the JSON of qtx.agent.v1.Event. */
  void (*on_event_json)(void* user, const char* event_json);
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

/* ---- Since 0.2: cancellation, asynchronous calls, streams ----------------
 *
 * Blocking calls below take a qtx_call_options-like struct with a deadline
 * and an optional cancellation token; streamed calls are handles that the
 * caller feeds (stdin, upload data) and drains (output, download data)
 * from threads of its own, with bounded buffers and the agent's flow
 * control between them: a slow reader slows the guest down, it never makes
 * the library buffer without bound.
 *
 * Handles: the functions that block (write, read, wait) fail with
 * QTX_ERR_INVALID_ARGUMENT inside a callback, where they would block the
 * I/O thread for good; free there cancels without waiting. A handle may be
 * used from several threads at once (one writing, others reading), but
 * must not be freed while another thread is inside one of its functions. */

/* A cancellation token: firing it ends every call that was given it (and
 * every later one) with QTX_ERR_CANCELLED, and the agent is told to stop
 * them (an exec is killed, a transfer abandoned). Any thread, callbacks
 * included, may fire it; firing is idempotent. Free it only once no call
 * using it is running. */
typedef struct qtx_cancel qtx_cancel;
QTX_C_API qtx_cancel* qtx_cancel_new(void) QTX_NOEXCEPT;
QTX_C_API void qtx_cancel_fire(qtx_cancel* cancel) QTX_NOEXCEPT;
QTX_C_API int qtx_cancel_fired(const qtx_cancel* cancel) QTX_NOEXCEPT; /* 1 once fired */
QTX_C_API void qtx_cancel_free(qtx_cancel* cancel) QTX_NOEXCEPT;

/* Initialise with qtx_call_options_init(). */
typedef struct qtx_call_options {
  size_t struct_size;
  uint32_t timeout_ms; /* the whole call, from its start; 0: no deadline */
  qtx_cancel* cancel;  /* may be NULL */
} qtx_call_options;
static inline void qtx_call_options_init(qtx_call_options* options) {
  memset(options, 0, sizeof(*options));
  options->struct_size = sizeof(*options);
}

/* qtx_agent_call_json with a deadline and a cancellation token (options
 * may be NULL: no deadline, no token). */
QTX_C_API int qtx_agent_request_json(qtx_agent* agent, const char* request_json, const qtx_call_options* options,
                                     char** response_json, qtx_error* err) QTX_NOEXCEPT;

/* The same without blocking. Returns 0 once the request is submitted: then
 * `done` runs exactly once, on the I/O thread (or on the calling thread
 * when the manager is already gone), with the Response's JSON and err NULL
 * on success, or response_json NULL and the error; both are valid only
 * during the callback. A request refused before submission (bad JSON,
 * NULL arguments) returns its error kind and `done` is never called.
 * *call_id (may be NULL) receives an id for qtx_agent_cancel_call. */
typedef void (*qtx_response_fn)(void* user, const char* response_json, const qtx_error* err);
QTX_C_API int qtx_agent_request_json_async(qtx_agent* agent, const char* request_json, const qtx_call_options* options,
                                           qtx_response_fn done, void* user, uint64_t* call_id,
                                           qtx_error* err) QTX_NOEXCEPT;
/* Ends an asynchronous call with QTX_ERR_CANCELLED (nothing if it ended). */
QTX_C_API void qtx_agent_cancel_call(qtx_agent* agent, uint64_t call_id) QTX_NOEXCEPT;

/* Counters of the agent's connection and calls (qtx::host::AgentStats) as
 * a JSON object with the C++ field names; release with qtx_free. */
QTX_C_API int qtx_agent_stats_json(qtx_agent* agent, char** stats_json, qtx_error* err) QTX_NOEXCEPT;

/* --- exec as a handle: stdin fed and output drained by the caller ------- */

typedef struct qtx_exec qtx_exec;
/* Initialise with qtx_exec_options_init(). */
typedef struct qtx_exec_options {
  size_t struct_size;
  uint32_t timeout_ms; /* the whole command; 0: no deadline */
  qtx_cancel* cancel;  /* may be NULL */
  /* 1: the program's stdin is fed with qtx_exec_write_stdin and ends with
   * qtx_exec_close_stdin (after the request's own "stdin" bytes, if any);
   * 0: the program's stdin is the request's "stdin" bytes, then closed. */
  int stdin_stream;
  /* NULL: the output is read with qtx_exec_read, and the agent sends no
   * more than the caller has read plus one window (ExecRequest's
   * output_window, 1 MiB by default); stdout and stderr share that window,
   * so a caller that reads only one of them must still drain the other, as
   * with pipes. Not NULL: every piece goes to on_output on the I/O thread
   * (stream 1: stdout, 2: stderr) and qtx_exec_read is refused. */
  void (*on_output)(void* user, int stream, const char* data, size_t n);
  void* user;
} qtx_exec_options;
static inline void qtx_exec_options_init(qtx_exec_options* options) {
  memset(options, 0, sizeof(*options));
  options->struct_size = sizeof(*options);
}

/* Starts the command of request_json (the fields of qtx.agent.v1.ExecRequest,
 * as for qtx_agent_exec_json; its stdin_stream only with the option's);
 * NULL on error. The handle is the caller's
 * until qtx_exec_free, which must come before qtx_agent_free. */
QTX_C_API qtx_exec* qtx_agent_exec_start(qtx_agent* agent, const char* request_json, const qtx_exec_options* options,
                                         qtx_error* err) QTX_NOEXCEPT;
/* Queues n bytes of stdin; blocks while the handle's buffer (256 KiB) is
 * full, i.e. while the program does not read. QTX_ERR_CLOSED once stdin
 * was closed; the call's error once it ended. */
QTX_C_API int qtx_exec_write_stdin(qtx_exec* exec, const void* data, size_t n, qtx_error* err) QTX_NOEXCEPT;
/* Closes the program's stdin once what was queued has been sent. */
QTX_C_API int qtx_exec_close_stdin(qtx_exec* exec, qtx_error* err) QTX_NOEXCEPT;
/* Blocks until output of `stream` (1: stdout, 2: stderr) is there, then
 * copies up to cap bytes and sets *n. *n = 0 with QTX_OK: the stream has
 * ended (the command finished and everything was read). A command that
 * failed (deadline, cancelled, connection dropped) gives its error once
 * what arrived before has been read. */
QTX_C_API int qtx_exec_read(qtx_exec* exec, int stream, void* buf, size_t cap, size_t* n, qtx_error* err) QTX_NOEXCEPT;
/* Blocks until the command ends; *result_json (may be NULL) receives the
 * ExecResult's JSON (release with qtx_free). Output not read is discarded
 * (and its credit given back, so the command is never held up by it); a
 * read after that gives QTX_ERR_CLOSED rather than a clean end, when
 * something was discarded. */
QTX_C_API int qtx_exec_wait(qtx_exec* exec, char** result_json, qtx_error* err) QTX_NOEXCEPT;
/* Ends the command with QTX_ERR_CANCELLED (killed in the guest). */
QTX_C_API void qtx_exec_cancel(qtx_exec* exec) QTX_NOEXCEPT;
/* Cancels the command if it still runs and waits for its end: once it
 * returns no callback of this exec runs any more. Not from a callback. */
QTX_C_API void qtx_exec_free(qtx_exec* exec) QTX_NOEXCEPT;

/* --- transfers with options, and as handles ------------------------------ */

/* Initialise with qtx_transfer_options_init(). */
typedef struct qtx_transfer_options {
  size_t struct_size;
  uint32_t timeout_ms; /* the whole transfer; 0: no deadline */
  qtx_cancel* cancel;  /* may be NULL */
  uint32_t mode;       /* upload: the new file's mode; 0: 0644 */
  /* 1: no sha256 on either side (each chunk is still checked by its
   * frame's crc32c and offset, and the byte counts are compared). */
  int skip_sha256;
  uint64_t expected_total; /* for progress: the size when known, else 0 */
  /* May be NULL; runs on the I/O thread. total is 0 when unknown. */
  void (*on_progress)(void* user, uint64_t bytes, uint64_t total);
  void* user;
} qtx_transfer_options;
static inline void qtx_transfer_options_init(qtx_transfer_options* options) {
  memset(options, 0, sizeof(*options));
  options->struct_size = sizeof(*options);
}

/* qtx_agent_upload/download with options (may be NULL: the defaults).
 * *bytes (may be NULL) receives the size, sha256_hex (65 bytes, may be
 * NULL) the digest, empty with skip_sha256. */
QTX_C_API int qtx_agent_upload_file(qtx_agent* agent, const char* local_path, const char* guest_path,
                                    const qtx_transfer_options* options, uint64_t* bytes, char* sha256_hex,
                                    qtx_error* err) QTX_NOEXCEPT;
QTX_C_API int qtx_agent_download_file(qtx_agent* agent, const char* guest_path, const char* local_path,
                                      const qtx_transfer_options* options, uint64_t* bytes, char* sha256_hex,
                                      qtx_error* err) QTX_NOEXCEPT;

/* A transfer fed (upload) or drained (download) by the caller; NULL on
 * error. The guest file is replaced atomically once the upload completes;
 * nothing is left behind when it fails. Free with qtx_transfer_free before
 * qtx_agent_free. */
typedef struct qtx_transfer qtx_transfer;
QTX_C_API qtx_transfer* qtx_agent_upload_start(qtx_agent* agent, const char* guest_path,
                                               const qtx_transfer_options* options, qtx_error* err) QTX_NOEXCEPT;
QTX_C_API qtx_transfer* qtx_agent_download_start(qtx_agent* agent, const char* guest_path,
                                                 const qtx_transfer_options* options, qtx_error* err) QTX_NOEXCEPT;
/* Upload: queues n bytes; blocks while the handle's buffer (1 MiB) is full. */
QTX_C_API int qtx_transfer_write(qtx_transfer* transfer, const void* data, size_t n, qtx_error* err) QTX_NOEXCEPT;
/* Upload: the end of the data; qtx_transfer_wait then gives the outcome. */
QTX_C_API int qtx_transfer_close_write(qtx_transfer* transfer, qtx_error* err) QTX_NOEXCEPT;
/* Download: blocks until data is there, copies up to cap bytes, sets *n;
 * *n = 0 with QTX_OK at the end of a transfer that succeeded (its sha256
 * checked); a failed transfer gives its error once the data before has
 * been read. */
QTX_C_API int qtx_transfer_read(qtx_transfer* transfer, void* buf, size_t cap, size_t* n, qtx_error* err) QTX_NOEXCEPT;
/* Blocks until the transfer ends (a download's unread data is discarded). */
QTX_C_API int qtx_transfer_wait(qtx_transfer* transfer, uint64_t* bytes, char* sha256_hex, qtx_error* err) QTX_NOEXCEPT;
QTX_C_API void qtx_transfer_cancel(qtx_transfer* transfer) QTX_NOEXCEPT;
/* Cancels the transfer if it still runs and waits for its end. */
QTX_C_API void qtx_transfer_free(qtx_transfer* transfer) QTX_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* QTX_HOST_H */

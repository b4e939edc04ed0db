package qtx

// The C side of the callbacks: the library's function pointers cannot be Go
// functions, so these static shims forward to the //export'ed functions of
// callbacks.go, and the wrappers below fill the option structs whose `user`
// is a cgo.Handle (an integer, which Go code must not store in a pointer):
// on their own stack, or in C memory (qtxgo_transfer_options: the caller
// allocates the struct with C.malloc), never in Go memory.

/*
#include <stdint.h>
#include <qtx/host.h>

extern void qtxgoOnState(uintptr_t user, int state, qtx_error* cause);
extern void qtxgoOnEvent(uintptr_t user, char* event_json);
extern void qtxgoOnResponse(uintptr_t user, char* response_json, qtx_error* err);
extern void qtxgoOnProgress(uintptr_t user, uint64_t bytes, uint64_t total);

static void qtxgo_state_shim(void* user, qtx_state state, const qtx_error* cause) {
	qtxgoOnState((uintptr_t)user, (int)state, (qtx_error*)cause);
}
static void qtxgo_event_shim(void* user, const char* event_json) {
	qtxgoOnEvent((uintptr_t)user, (char*)event_json);
}
static void qtxgo_response_shim(void* user, const char* response_json, const qtx_error* err) {
	qtxgoOnResponse((uintptr_t)user, (char*)response_json, (qtx_error*)err);
}
static void qtxgo_progress_shim(void* user, uint64_t bytes, uint64_t total) {
	qtxgoOnProgress((uintptr_t)user, bytes, total);
}

qtx_agent* qtxgo_agent_add(qtx_manager* m, const char* path, int listen, uint32_t handshake_ms,
                           uint32_t keepalive_interval_ms, uint32_t keepalive_timeout_ms, uintptr_t user,
                           qtx_error* err) {
	qtx_agent_options o;
	qtx_agent_options_init(&o);
	o.socket_path = path;
	o.listen = listen;
	o.handshake_timeout_ms = handshake_ms;
	o.keepalive_interval_ms = keepalive_interval_ms;
	o.keepalive_timeout_ms = keepalive_timeout_ms;
	o.on_state = qtxgo_state_shim;
	o.on_event_json = qtxgo_event_shim;
	o.user = (void*)user;
	return qtx_agent_add(m, &o, err);
}

int qtxgo_request_async(qtx_agent* a, const char* json, uint32_t timeout_ms, uintptr_t user,
                               uint64_t* call_id, qtx_error* err) {
	qtx_call_options o;
	qtx_call_options_init(&o);
	o.timeout_ms = timeout_ms;
	return qtx_agent_request_json_async(a, json, &o, qtxgo_response_shim, (void*)user, call_id, err);
}

// o is C memory (see above).
void qtxgo_transfer_options(qtx_transfer_options* o, uint32_t timeout_ms, qtx_cancel* cancel, uint32_t mode,
                                   int skip_sha256, uint64_t expected_total, uintptr_t user) {
	qtx_transfer_options_init(o);
	o->timeout_ms = timeout_ms;
	o->cancel = cancel;
	o->mode = mode;
	o->skip_sha256 = skip_sha256;
	o->expected_total = expected_total;
	if (user != 0) {
		o->on_progress = qtxgo_progress_shim;
		o->user = (void*)user;
	}
}
*/
import "C"

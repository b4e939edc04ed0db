package qtx

/*
#include <stdlib.h>
#include <stdint.h>
#include <qtx/host.h>

// Declared in bridge.go's preamble, which defines it.
qtx_agent* qtxgo_agent_add(qtx_manager* m, const char* path, int listen, uint32_t handshake_ms,
                           uint32_t keepalive_interval_ms, uint32_t keepalive_timeout_ms, uintptr_t user,
                           qtx_error* err);
int qtxgo_request_async(qtx_agent* a, const char* json, uint32_t timeout_ms, uintptr_t user, uint64_t* call_id,
                        qtx_error* err);
*/
import "C"

import (
	"context"
	"encoding/json"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// State is the connection's state.
type State int

// The states of qtx_state.
const (
	StateDisconnected State = 0
	StateConnecting   State = 1
	StateHandshaking  State = 2
	StateReady        State = 3
	StateClosed       State = 4
)

func (s State) String() string { return C.GoString(C.qtx_state_name(C.qtx_state(s))) }

// AgentOptions configure an agent's connection. Zero durations ask for the
// library's defaults.
type AgentOptions struct {
	SocketPath string // required: the VM's chardev socket
	// Listen: the library listens on SocketPath and the agent (QEMU's
	// chardev with server=off) connects; otherwise it connects to it.
	Listen            bool
	HandshakeTimeout  time.Duration
	KeepaliveInterval time.Duration
	KeepaliveTimeout  time.Duration
	// EventBuffer is the capacity of the Events channel (default 64). When
	// it is full an arriving event is dropped (the newest, so the receiver
	// sees an unbroken run of the older ones) and counted in DroppedEvents.
	EventBuffer int
}

// Agent is one agent's connection. Safe for concurrent use.
type Agent struct {
	m      *Manager
	c      *C.qtx_agent
	cb     *agentCallbacks
	handle cgo.Handle

	mu      sync.Mutex
	idle    *sync.Cond // signalled when active drops to 0
	active  int        // calls running, handles not yet freed
	closed  bool
	closing chan struct{} // closed by Close: every call cancels itself
	handles map[streamHandle]struct{}
}

// streamHandle is an exec or transfer handle, freed by Close if its owner
// has not done it.
type streamHandle interface{ free() }

// agentCallbacks is what the I/O thread's callbacks reach through the
// agent's cgo.Handle.
type agentCallbacks struct {
	events  chan Event
	dropped atomic.Uint64

	mu      sync.Mutex
	state   State
	cause   *Error
	changed chan struct{} // closed and replaced on every state change
}

func (cb *agentCallbacks) setState(s State, cause *Error) {
	cb.mu.Lock()
	cb.state = s
	if cause != nil {
		cb.cause = cause
	}
	close(cb.changed)
	cb.changed = make(chan struct{})
	cb.mu.Unlock()
}

func (cb *agentCallbacks) deliver(eventJSON string) {
	ev := parseEvent(eventJSON)
	select {
	case cb.events <- ev:
	default:
		cb.dropped.Add(1)
	}
}

// AddAgent starts connecting to an agent; it does not wait for it (see
// WaitReady). Close the agent when done.
func (m *Manager) AddAgent(o AgentOptions) (*Agent, error) {
	buf := o.EventBuffer
	if buf <= 0 {
		buf = 64
	}
	cb := &agentCallbacks{events: make(chan Event, buf), changed: make(chan struct{})}
	a := &Agent{m: m, cb: cb, closing: make(chan struct{}), handles: map[streamHandle]struct{}{}}
	a.idle = sync.NewCond(&a.mu)
	a.handle = cgo.NewHandle(cb)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		a.handle.Delete()
		return nil, newError(KindClosed, "the manager was closed")
	}
	path := C.CString(o.SocketPath)
	defer C.free(unsafe.Pointer(path))
	listen := C.int(0)
	if o.Listen {
		listen = 1
	}
	var cerr C.qtx_error
	a.c = C.qtxgo_agent_add(m.c, path, listen, ms(o.HandshakeTimeout), ms(o.KeepaliveInterval),
		ms(o.KeepaliveTimeout), C.uintptr_t(a.handle), &cerr)
	if a.c == nil {
		a.handle.Delete()
		return nil, errorFromC(&cerr)
	}
	cb.mu.Lock()
	if cb.state == StateDisconnected {
		cb.state = State(C.qtx_agent_state(a.c))
	}
	cb.mu.Unlock()
	m.agents[a] = struct{}{}
	return a, nil
}

func ms(d time.Duration) C.uint32_t {
	if d <= 0 {
		return 0
	}
	return C.uint32_t((d + time.Millisecond - 1) / time.Millisecond)
}

// Close cancels every call in flight on the agent (they fail with
// KindClosed), frees the exec and transfer handles still open, waits for
// the calls to return, closes the connection and then the Events channel.
// Idempotent; not from an event handler that blocks Close's caller.
func (a *Agent) Close() error {
	a.mu.Lock()
	if a.closed {
		for a.c != nil {
			a.idle.Wait()
		}
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	close(a.closing)
	hs := make([]streamHandle, 0, len(a.handles))
	for h := range a.handles {
		hs = append(hs, h)
	}
	a.mu.Unlock()
	for _, h := range hs {
		h.free()
	}
	a.mu.Lock()
	for a.active > 0 {
		a.idle.Wait()
	}
	c := a.c
	a.mu.Unlock()
	C.qtx_agent_free(c) // no callback of this agent runs after it returns
	a.handle.Delete()
	close(a.cb.events)
	a.m.forget(a)
	a.mu.Lock()
	a.c = nil
	a.idle.Broadcast()
	a.mu.Unlock()
	return nil
}

// enter counts a call (or an open handle) so that Close waits for it.
func (a *Agent) enter() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return newError(KindClosed, "the agent was closed")
	}
	a.active++
	return nil
}

func (a *Agent) leave() {
	a.mu.Lock()
	a.active--
	if a.active == 0 {
		a.idle.Broadcast()
	}
	a.mu.Unlock()
}

// track registers a handle for Close to free. Once Close began it refuses
// with KindClosed, and the caller frees the handle itself: Close frees only
// the handles it found when it began, then waits for the calls to leave,
// so one registered later would never be freed and Close would wait for
// ever.
func (a *Agent) track(h streamHandle) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return newError(KindClosed, "the agent was closed")
	}
	a.handles[h] = struct{}{}
	return nil
}

func (a *Agent) untrack(h streamHandle) {
	a.mu.Lock()
	delete(a.handles, h)
	a.mu.Unlock()
}

func (a *Agent) isClosing() bool {
	select {
	case <-a.closing:
		return true
	default:
		return false
	}
}

// State is the connection's current state.
func (a *Agent) State() State {
	a.cb.mu.Lock()
	defer a.cb.mu.Unlock()
	return a.cb.state
}

// Events delivers every event the agent pushes (telemetry samples, freeze
// state changes, the agent's own telemetry drops, restarts), from a
// bounded buffer: see AgentOptions.EventBuffer and DroppedEvents. It is
// closed by Close.
func (a *Agent) Events() <-chan Event { return a.cb.events }

// DroppedEvents counts the events dropped because Events was full.
func (a *Agent) DroppedEvents() uint64 { return a.cb.dropped.Load() }

// WaitReady waits until the handshake is done. A context without a
// deadline waits until it is cancelled. On a timeout the error's message
// carries the last connection failure.
func (a *Agent) WaitReady(ctx context.Context) error {
	if err := a.enter(); err != nil {
		return err
	}
	defer a.leave()
	for {
		a.cb.mu.Lock()
		s, cause, changed := a.cb.state, a.cb.cause, a.cb.changed
		a.cb.mu.Unlock()
		if s == StateReady {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			e := contextError(ctx).(*Error)
			if cause != nil {
				e.Message += "; last connection failure: " + cause.Error()
			} else {
				e.Message += "; the agent never connected"
			}
			return e
		case <-a.closing:
			return newError(KindClosed, "the agent was closed")
		}
	}
}

type asyncResult struct {
	json string
	err  *Error
}

// Call sends any single-answer request as the JSON of qtx.agent.v1.Request
// and returns the Response's JSON. req is a string, []byte or
// json.RawMessage holding the JSON, or a value json.Marshal turns into it,
// e.g. map[string]any{"file_stat": map[string]any{"path": "/etc/hostname"}}.
// A guest's error answer is an *Error of its kind.
func (a *Agent) Call(ctx context.Context, req any) (json.RawMessage, error) {
	var s string
	switch r := req.(type) {
	case string:
		s = r
	case []byte:
		s = string(r)
	case json.RawMessage:
		s = string(r)
	default:
		b, err := json.Marshal(req)
		if err != nil {
			return nil, newError(KindInvalidArgument, "request: "+err.Error())
		}
		s = string(b)
	}
	out, err := a.call(ctx, s)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(out), nil
}

// call runs one request through qtx_agent_request_json_async: no OS thread
// waits for it. The context's deadline is the call's timeout; its
// cancellation (or Close) cancels the call, whose `done` still comes
// exactly once, so the handle and channel are always released here.
func (a *Agent) call(ctx context.Context, req string) (string, error) {
	if err := contextError(ctx); err != nil {
		return "", err
	}
	timeout, err := timeoutMs(ctx)
	if err != nil {
		return "", err
	}
	if err := a.enter(); err != nil {
		return "", err
	}
	defer a.leave()
	ch := make(chan asyncResult, 1)
	h := cgo.NewHandle(ch)
	defer h.Delete()
	creq := C.CString(req)
	defer C.free(unsafe.Pointer(creq))
	var id C.uint64_t
	var cerr C.qtx_error
	if rc := C.qtxgo_request_async(a.c, creq, C.uint32_t(timeout), C.uintptr_t(h), &id, &cerr); rc != 0 {
		return "", withContext(ctx, errorFromC(&cerr), false)
	}
	var r asyncResult
	closed := false
	select {
	case r = <-ch:
	case <-ctx.Done():
		C.qtx_agent_cancel_call(a.c, id)
		r = <-ch
	case <-a.closing:
		closed = true
		C.qtx_agent_cancel_call(a.c, id)
		r = <-ch
	}
	if r.err != nil {
		return "", withContext(ctx, r.err, closed)
	}
	return r.json, nil
}

// Identity is the agent's identity from the last handshake as JSON
// (version, instance_id, boot_id, capabilities); KindNotFound before it.
func (a *Agent) Identity() (json.RawMessage, error) {
	if err := a.enter(); err != nil {
		return nil, err
	}
	defer a.leave()
	var out *C.char
	var cerr C.qtx_error
	if rc := C.qtx_agent_identity_json(a.c, &out, &cerr); rc != 0 {
		return nil, errorFromC(&cerr)
	}
	defer C.qtx_free(unsafe.Pointer(out))
	return json.RawMessage(C.GoString(out)), nil
}

// LatestTelemetry is the last telemetry sample received; KindNotFound when
// none came.
func (a *Agent) LatestTelemetry() (*Telemetry, error) {
	if err := a.enter(); err != nil {
		return nil, err
	}
	defer a.leave()
	var out *C.char
	var cerr C.qtx_error
	if rc := C.qtx_agent_latest_telemetry_json(a.c, &out, &cerr); rc != 0 {
		return nil, errorFromC(&cerr)
	}
	defer C.qtx_free(unsafe.Pointer(out))
	return parseTelemetry(json.RawMessage(C.GoString(out)))
}

// Stats are the connection's and calls' counters (qtx::host::AgentStats,
// the C++ field names), e.g. "calls_in_flight". Numbers are json.Number.
func (a *Agent) Stats() (map[string]any, error) {
	if err := a.enter(); err != nil {
		return nil, err
	}
	defer a.leave()
	var out *C.char
	var cerr C.qtx_error
	if rc := C.qtx_agent_stats_json(a.c, &out, &cerr); rc != 0 {
		return nil, errorFromC(&cerr)
	}
	defer C.qtx_free(unsafe.Pointer(out))
	return decodeNumbers(C.GoString(out))
}

package qtx

// The //export'ed functions the library calls on its I/O thread (through
// bridge.go's shims). Each one only copies what it was given and hands it
// over without blocking: a buffered channel send that cannot block, a
// non-blocking send, or a short mutex. `user` arrives as a uintptr_t (the
// shims convert the library's void*): it is a cgo.Handle, an integer that
// must not be held in a Go pointer, not even on the stack.

/*
#include <stdint.h>
#include <qtx/host.h>
*/
import "C"

import "runtime/cgo"

//export qtxgoOnState
func qtxgoOnState(user C.uintptr_t, state C.int, cause *C.qtx_error) {
	cb := cgo.Handle(user).Value().(*agentCallbacks)
	var e *Error
	if cause != nil {
		e = errorFromC(cause)
	}
	cb.setState(State(state), e)
}

//export qtxgoOnEvent
func qtxgoOnEvent(user C.uintptr_t, eventJSON *C.char) {
	cb := cgo.Handle(user).Value().(*agentCallbacks)
	cb.deliver(C.GoString(eventJSON))
}

//export qtxgoOnResponse
func qtxgoOnResponse(user C.uintptr_t, responseJSON *C.char, err *C.qtx_error) {
	ch := cgo.Handle(user).Value().(chan asyncResult)
	// The channel has room for this one answer: the send never blocks.
	if err != nil {
		ch <- asyncResult{err: errorFromC(err)}
		return
	}
	ch <- asyncResult{json: C.GoString(responseJSON)}
}

//export qtxgoOnProgress
func qtxgoOnProgress(user C.uintptr_t, bytes, total C.uint64_t) {
	p := cgo.Handle(user).Value().(*progressRelay)
	p.post(uint64(bytes), uint64(total))
}

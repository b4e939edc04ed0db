package qtx

// The //export'ed functions the library calls on its I/O thread (through
// bridge.go's shims). Each one only copies what it was given and hands it
// over without blocking: a buffered channel send that cannot block, a
// non-blocking send, or a short mutex.

/*
#include <stdint.h>
#include <qtx/host.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

//export qtxgoOnState
func qtxgoOnState(user unsafe.Pointer, state C.int, cause *C.qtx_error) {
	cb := cgo.Handle(uintptr(user)).Value().(*agentCallbacks)
	var e *Error
	if cause != nil {
		e = errorFromC(cause)
	}
	cb.setState(State(state), e)
}

//export qtxgoOnEvent
func qtxgoOnEvent(user unsafe.Pointer, eventJSON *C.char) {
	cb := cgo.Handle(uintptr(user)).Value().(*agentCallbacks)
	cb.deliver(C.GoString(eventJSON))
}

//export qtxgoOnResponse
func qtxgoOnResponse(user unsafe.Pointer, responseJSON *C.char, err *C.qtx_error) {
	ch := cgo.Handle(uintptr(user)).Value().(chan asyncResult)
	// The channel has room for this one answer: the send never blocks.
	if err != nil {
		ch <- asyncResult{err: errorFromC(err)}
		return
	}
	ch <- asyncResult{json: C.GoString(responseJSON)}
}

//export qtxgoOnProgress
func qtxgoOnProgress(user unsafe.Pointer, bytes, total C.uint64_t) {
	p := cgo.Handle(uintptr(user)).Value().(*progressRelay)
	p.post(uint64(bytes), uint64(total))
}

package qtx

/*
#include <qtx/host.h>
*/
import "C"

import (
	"context"
	"fmt"
	"time"
)

// Kind is the library's error kind (qtx_error_kind).
type Kind int

// The kinds, with the numbers of qtx_error_kind.
const (
	KindDisconnected       Kind = 1  // not ready, or the connection dropped: retry once ready
	KindTimeout            Kind = 2  // the deadline passed
	KindCancelled          Kind = 3  // the call's context (or a cancel) ended it
	KindDenied             Kind = 4  // the guest's policy forbids it: do not retry
	KindUnsupported        Kind = 5  // the agent does not know the request
	KindInvalidArgument    Kind = 6  // the request is malformed
	KindNotFound           Kind = 7  // no such file, user, process...
	KindAlreadyExists      Kind = 8  // also: the socket already has an owner
	KindBusy               Kind = 9  // back off and retry
	KindFailedPrecondition Kind = 10 // the guest's state does not allow it now
	KindGuestFailed        Kind = 11 // the guest failed (I/O, internal error)
	KindProtocol           Kind = 12 // the peer broke the protocol
	KindLocal              Kind = 13 // a local failure (a file on the host, memory)
	KindClosed             Kind = 14 // the agent or handle was closed
)

// String is the kind's stable name (as in docs/host.md): "denied", "timeout"...
func (k Kind) String() string {
	if k <= 0 || k > KindClosed {
		return fmt.Sprintf("kind(%d)", int(k))
	}
	return C.GoString(C.qtx_error_kind_name(C.int(k)))
}

// Retryable reports whether the same call may succeed later unchanged
// (host/src/error_table.h: disconnected, timeout, busy).
func (k Kind) Retryable() bool {
	return k == KindDisconnected || k == KindTimeout || k == KindBusy
}

// Error is every failure of this package's calls.
type Error struct {
	Kind      Kind
	GuestCode int    // qtx.agent.v1.ErrorCode; 0 when the failure is local
	Errno     int    // the OS errno, when one applies
	Message   string // for humans; never parse it
	// ctx is context.Canceled or context.DeadlineExceeded when the call's
	// context ended it; Unwrap returns it so errors.Is sees it.
	ctx      error
	sentinel bool
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "qtx: " + e.Kind.String()
	}
	return "qtx: " + e.Kind.String() + ": " + e.Message
}

// Retryable reports whether the same call may succeed later unchanged.
func (e *Error) Retryable() bool { return e.Kind.Retryable() }

// Is matches the sentinel of the error's kind: errors.Is(err, qtx.ErrDenied).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.sentinel && t.Kind == e.Kind
}

// Unwrap gives context.Canceled or context.DeadlineExceeded for a call its
// context ended, else nil.
func (e *Error) Unwrap() error { return e.ctx }

func sentinel(k Kind) *Error { return &Error{Kind: k, sentinel: true} }

// Sentinels for errors.Is, one per kind. Compare with errors.Is, never ==.
var (
	ErrDisconnected       = sentinel(KindDisconnected)
	ErrTimeout            = sentinel(KindTimeout)
	ErrCancelled          = sentinel(KindCancelled)
	ErrDenied             = sentinel(KindDenied)
	ErrUnsupported        = sentinel(KindUnsupported)
	ErrInvalidArgument    = sentinel(KindInvalidArgument)
	ErrNotFound           = sentinel(KindNotFound)
	ErrAlreadyExists      = sentinel(KindAlreadyExists)
	ErrBusy               = sentinel(KindBusy)
	ErrFailedPrecondition = sentinel(KindFailedPrecondition)
	ErrGuestFailed        = sentinel(KindGuestFailed)
	ErrProtocol           = sentinel(KindProtocol)
	ErrLocal              = sentinel(KindLocal)
	ErrClosed             = sentinel(KindClosed)
)

// errorFromC copies a qtx_error (valid only during the call or callback).
func errorFromC(e *C.qtx_error) *Error {
	return &Error{
		Kind:      Kind(e.kind),
		GuestCode: int(e.guest_code),
		Errno:     int(e.os_errno),
		Message:   C.GoString(&e.message[0]),
	}
}

func newError(k Kind, msg string) *Error { return &Error{Kind: k, Message: msg} }

// withContext ties an error of a call to the context that ran it: a call
// its context's deadline ended is KindTimeout wrapping
// context.DeadlineExceeded, one its cancellation ended is KindCancelled
// wrapping context.Canceled. A cancellation that came from Agent.Close is
// KindClosed. When the kind changes, so does the message: the library's
// text describes the cancellation it saw, not what caused it.
func withContext(ctx context.Context, e *Error, closed bool) *Error {
	switch e.Kind {
	case KindTimeout:
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			e.ctx = context.DeadlineExceeded
		}
	case KindCancelled:
		switch ctx.Err() {
		case context.DeadlineExceeded:
			e.Kind, e.Message, e.ctx = KindTimeout, msgDeadlinePassed, context.DeadlineExceeded
		case context.Canceled:
			e.ctx = context.Canceled
		default:
			if closed {
				e.Kind, e.Message = KindClosed, "the agent was closed"
			}
		}
	}
	return e
}

const msgDeadlinePassed = "the context's deadline passed"

// contextError is the error of a call whose context ended before it began.
func contextError(ctx context.Context) error {
	switch ctx.Err() {
	case nil:
		return nil
	case context.DeadlineExceeded:
		return &Error{Kind: KindTimeout, Message: msgDeadlinePassed, ctx: context.DeadlineExceeded}
	default:
		return &Error{Kind: KindCancelled, Message: "the context was cancelled", ctx: ctx.Err()}
	}
}

// timeoutMs is the call's timeout_ms from the context's deadline (0: none),
// rounded up so that the library's deadline is never before the context's.
func timeoutMs(ctx context.Context) (uint32, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0, nil
	}
	d := time.Until(dl)
	if d <= 0 {
		return 0, &Error{Kind: KindTimeout, Message: msgDeadlinePassed, ctx: context.DeadlineExceeded}
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms > 0xFFFFFFFF {
		return 0, nil // beyond 49 days: as good as none
	}
	return uint32(ms), nil
}

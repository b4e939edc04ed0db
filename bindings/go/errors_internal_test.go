package qtx

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A cancellation that the context's deadline caused reads as a timeout,
// message included: the library's "cancelled" no longer describes it.
func TestWithContextDeadlineRewritesTheMessage(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	e := withContext(ctx, &Error{Kind: KindCancelled, Message: "cancelled"}, false)
	if e.Kind != KindTimeout || e.Error() != "qtx: timeout: the context's deadline passed" ||
		!errors.Is(e, context.DeadlineExceeded) || !errors.Is(e, ErrTimeout) {
		t.Fatalf("%v (kind %v)", e, e.Kind)
	}
}

// A cancellation by the context itself keeps its kind and message.
func TestWithContextCancelKeepsTheMessage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := withContext(ctx, &Error{Kind: KindCancelled, Message: "cancelled"}, false)
	if e.Kind != KindCancelled || e.Error() != "qtx: cancelled: cancelled" || !errors.Is(e, context.Canceled) {
		t.Fatalf("%v (kind %v)", e, e.Kind)
	}
}

// One Agent.Close caused is KindClosed.
func TestWithContextClosed(t *testing.T) {
	e := withContext(context.Background(), &Error{Kind: KindCancelled, Message: "cancelled"}, true)
	if e.Kind != KindClosed || e.Error() != "qtx: closed: the agent was closed" || errors.Unwrap(e) != nil {
		t.Fatalf("%v (kind %v)", e, e.Kind)
	}
}

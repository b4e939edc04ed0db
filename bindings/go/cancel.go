package qtx

/*
#include <qtx/host.h>
*/
import "C"

import (
	"context"
	"sync/atomic"
)

// liveTokens counts the tokens not yet released, for the tests' leak
// checks.
var liveTokens atomic.Int64

// token is a qtx_cancel fired by a goroutine when the call's context ends
// or the agent closes. release stops the goroutine first, so the token is
// freed only once nothing can fire it and no call uses it.
type token struct {
	c    *C.qtx_cancel
	stop chan struct{}
	done chan struct{}
}

func (a *Agent) newToken(ctx context.Context) *token {
	t := &token{c: C.qtx_cancel_new(), stop: make(chan struct{}), done: make(chan struct{})}
	liveTokens.Add(1)
	go func() {
		defer close(t.done)
		select {
		case <-ctx.Done():
			C.qtx_cancel_fire(t.c)
		case <-a.closing:
			C.qtx_cancel_fire(t.c)
		case <-t.stop:
		}
	}()
	return t
}

// release must come after every call that was given the token returned.
func (t *token) release() {
	close(t.stop)
	<-t.done
	C.qtx_cancel_free(t.c)
	liveTokens.Add(-1)
}

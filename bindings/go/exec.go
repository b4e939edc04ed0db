package qtx

/*
#include <stdlib.h>
#include <qtx/host.h>
*/
import "C"

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"unsafe"
)

// Cmd is a command to run in the guest, in the manner of os/exec.Cmd:
// set its fields, then Run, Output, or Start and Wait. A Cmd runs once.
type Cmd struct {
	Args        []string // Args[0] is the program (execve: no shell unless named)
	Env         []string // "NAME=value"; replaces the agent's environment when not empty
	Dir         string   // working directory; empty: the agent's
	User        string   // run as this user; empty: the agent's
	MergeStderr bool     // stderr into stdout

	// Stdin is fed to the program as it reads (nil: empty stdin); io.EOF
	// closes the program's stdin, another error of Read kills the command
	// and is Wait's error, as os/exec returns its copying errors. Stdout and
	// Stderr receive the output (nil: discarded), unless StdoutPipe or
	// StderrPipe was called. A writer that is slow slows the program down:
	// the agent sends no more than one window ahead of what was read.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	// Result is the ExecResult once Wait returned: exit code or signal,
	// timed_out, truncated, byte counts, duration.
	Result *ExecResult

	agent    *Agent
	ctx      context.Context
	tok      *token
	h        *execHandle
	pipes    [3]*execPipe // by stream number
	copiers  sync.WaitGroup
	copyErr  error
	copyMu   sync.Mutex
	started  bool
	finished bool
}

// ExecResult is qtx.agent.v1.ExecResult.
type ExecResult struct {
	Pid         uint32 `json:"pid"`
	ExitCode    *int   `json:"exit_code"` // nil when killed by a signal
	Signal      int    `json:"signal"`
	TimedOut    bool   `json:"timed_out"`
	Truncated   bool   `json:"truncated"`
	StdoutBytes Uint64 `json:"stdout_bytes"`
	StderrBytes Uint64 `json:"stderr_bytes"`
	DurationMs  Uint64 `json:"duration_ms"`
}

// ExitError is Wait's error for a command that exited non-zero or was
// killed by a signal.
type ExitError struct {
	ExitCode int // -1 when killed by a signal
	Signal   int
	Result   *ExecResult
}

func (e *ExitError) Error() string {
	if e.Signal != 0 {
		return fmt.Sprintf("qtx: command killed by signal %d", e.Signal)
	}
	return fmt.Sprintf("qtx: command exited with status %d", e.ExitCode)
}

// Command prepares argv to run in the guest.
func (a *Agent) Command(argv ...string) *Cmd {
	return &Cmd{Args: argv, agent: a}
}

// execHandle guards a qtx_exec: operations hold the read lock, free takes
// the write lock, so the handle is never freed under a blocked call. It
// owns the exec's cancel token, released by free after qtx_exec_free
// (whoever frees it: Wait, or Agent.Close for a Cmd never waited for).
type execHandle struct {
	a     *Agent
	tok   *token
	mu    sync.RWMutex
	c     *C.qtx_exec
	freed bool
}

// testHookExecStarted, when set (by tests), runs in Start between
// qtx_agent_exec_start and the handle's registration with the agent.
var testHookExecStarted func()

var errHandleFreed = newError(KindClosed, "the command's handle was released")

func (h *execHandle) with(f func(c *C.qtx_exec) error) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.freed {
		return errHandleFreed
	}
	return f(h.c)
}

// free cancels the command if it still runs (so blocked calls return),
// then frees the handle and its token. Idempotent.
func (h *execHandle) free() {
	h.mu.RLock()
	if !h.freed {
		C.qtx_exec_cancel(h.c)
	}
	h.mu.RUnlock()
	h.mu.Lock()
	if h.freed {
		h.mu.Unlock()
		return
	}
	h.freed = true
	C.qtx_exec_free(h.c)
	h.mu.Unlock()
	h.tok.release()
	h.a.untrack(h)
	h.a.leave()
}

// execPipe reads one output stream of the command through qtx_exec_read.
type execPipe struct {
	h      *execHandle
	stream int
}

func (p *execPipe) Read(b []byte) (int, error) {
	if p.h == nil {
		return 0, newError(KindInvalidArgument, "the command was not started")
	}
	if len(b) == 0 {
		return 0, nil
	}
	var n C.size_t
	err := p.h.with(func(c *C.qtx_exec) error {
		var cerr C.qtx_error
		if rc := C.qtx_exec_read(c, C.int(p.stream), unsafe.Pointer(&b[0]), C.size_t(len(b)), &n, &cerr); rc != 0 {
			return errorFromC(&cerr)
		}
		return nil
	})
	if err == errHandleFreed {
		return 0, io.EOF
	}
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	return int(n), nil
}

func (p *execPipe) Close() error { return nil }

// StdoutPipe returns a reader of the command's stdout, to call before
// Start. As with os/exec, Wait releases the pipe, so it is incorrect to
// call Wait before all reads from the pipe have completed: read it until
// io.EOF (or an error) first. The agent sends stdout and stderr through
// one output window (1 MiB), so a pipe left unread holds the command up
// once its output fills the window, and Wait waits for ever (or until
// Start's context ends). A stream that goes to Stdout or Stderr (or to
// nothing, when nil) is drained by the Cmd itself and never holds it up.
// A Read after Wait returns io.EOF.
func (c *Cmd) StdoutPipe() (io.Reader, error) { return c.pipe(1) }

// StderrPipe is StdoutPipe for stderr.
func (c *Cmd) StderrPipe() (io.Reader, error) { return c.pipe(2) }

func (c *Cmd) pipe(stream int) (io.Reader, error) {
	if c.started {
		return nil, newError(KindInvalidArgument, "pipe requested after Start")
	}
	if c.pipes[stream] != nil {
		return nil, newError(KindInvalidArgument, "pipe requested twice")
	}
	c.pipes[stream] = &execPipe{stream: stream}
	return c.pipes[stream], nil
}

// Start starts the command. ctx bounds the whole command, as with
// exec.CommandContext: its deadline is the command's timeout, and its
// cancellation kills the command in the guest.
func (c *Cmd) Start(ctx context.Context) error {
	if c.started {
		return newError(KindInvalidArgument, "Cmd already started")
	}
	if len(c.Args) == 0 {
		return newError(KindInvalidArgument, "Cmd has no Args")
	}
	if err := contextError(ctx); err != nil {
		return err
	}
	timeout, err := timeoutMs(ctx)
	if err != nil {
		return err
	}
	a := c.agent
	req, _ := json.Marshal(struct {
		Argv        []string `json:"argv"`
		Env         []string `json:"env,omitempty"`
		Cwd         string   `json:"cwd,omitempty"`
		User        string   `json:"user,omitempty"`
		MergeStderr bool     `json:"merge_stderr,omitempty"`
	}{c.Args, c.Env, c.Dir, c.User, c.MergeStderr})
	if err := a.enter(); err != nil {
		return err
	}
	c.started = true
	c.ctx = ctx
	c.tok = a.newToken(ctx)
	var o C.qtx_exec_options
	C.qtx_exec_options_init(&o)
	o.timeout_ms = C.uint32_t(timeout)
	o.cancel = c.tok.c
	if c.Stdin != nil {
		o.stdin_stream = 1
	}
	creq := C.CString(string(req))
	defer C.free(unsafe.Pointer(creq))
	var cerr C.qtx_error
	ch := C.qtx_agent_exec_start(a.c, creq, &o, &cerr)
	if ch == nil {
		a.leave()
		c.tok.release()
		c.finished = true
		return withContext(ctx, errorFromC(&cerr), a.isClosing())
	}
	c.h = &execHandle{a: a, tok: c.tok, c: ch}
	if testHookExecStarted != nil {
		testHookExecStarted()
	}
	if err := a.track(c.h); err != nil { // Close began meanwhile
		c.h.free()
		c.finished = true
		return err
	}

	for stream := 1; stream <= 2; stream++ {
		if p := c.pipes[stream]; p != nil {
			p.h = c.h
			continue
		}
		w := c.Stdout
		if stream == 2 {
			w = c.Stderr
		}
		if w == nil {
			w = io.Discard // drained all the same: both streams share one window
		}
		c.copiers.Add(1)
		go func(r io.Reader, w io.Writer) {
			defer c.copiers.Done()
			if _, err := io.Copy(w, r); err != nil {
				c.setCopyErr(err)
				// Keep draining: the streams share one window, and a
				// stream nobody reads would hold the program up.
				_, _ = io.Copy(io.Discard, r)
			}
		}(&execPipe{h: c.h, stream: stream}, w)
	}
	if c.Stdin != nil {
		// Not waited for by Wait: a Stdin that never returns from Read must
		// not hold up the command's end (os/exec does the same for a
		// non-*os.File Stdin only once the program exits).
		go c.feedStdin()
	}
	return nil
}

func (c *Cmd) setCopyErr(err error) {
	c.copyMu.Lock()
	if c.copyErr == nil {
		c.copyErr = err
	}
	c.copyMu.Unlock()
}

func (c *Cmd) feedStdin() {
	buf := make([]byte, 64<<10)
	for {
		n, rerr := c.Stdin.Read(buf)
		if n > 0 {
			werr := c.h.with(func(h *C.qtx_exec) error {
				var cerr C.qtx_error
				if rc := C.qtx_exec_write_stdin(h, unsafe.Pointer(&buf[0]), C.size_t(n), &cerr); rc != 0 {
					return errorFromC(&cerr)
				}
				return nil
			})
			if werr != nil {
				return // the command ended or stopped reading: its outcome says why
			}
		}
		if rerr == io.EOF {
			_ = c.h.with(func(h *C.qtx_exec) error {
				var cerr C.qtx_error
				C.qtx_exec_close_stdin(h, &cerr)
				return nil
			})
			return
		}
		if rerr != nil {
			// Not an end of input: the program must not take it for one.
			// The error is recorded before the cancel, so the Wait that
			// the cancel lets return sees it.
			c.setCopyErr(rerr)
			_ = c.h.with(func(h *C.qtx_exec) error {
				C.qtx_exec_cancel(h)
				return nil
			})
			return
		}
	}
}

// Wait waits for the command to end and for its output to be copied to
// Stdout and Stderr, then releases the command and its pipes: read the
// pipes to their end before calling it (see StdoutPipe). The error is nil for exit status 0, an *ExitError for
// another status or a signal, or an *Error (deadline, cancelled,
// disconnected...).
func (c *Cmd) Wait() error {
	if !c.started {
		return newError(KindInvalidArgument, "Cmd not started")
	}
	if c.finished {
		return newError(KindInvalidArgument, "Wait already called, or Start failed")
	}
	c.finished = true
	c.copiers.Wait()
	var result string
	err := c.h.with(func(h *C.qtx_exec) error {
		var out *C.char
		var cerr C.qtx_error
		if rc := C.qtx_exec_wait(h, &out, &cerr); rc != 0 {
			return errorFromC(&cerr)
		}
		if out != nil {
			result = C.GoString(out)
			C.qtx_free(unsafe.Pointer(out))
		}
		return nil
	})
	closing := c.agent.isClosing()
	c.h.free()
	// feedStdin is not waited for: its error is read under the lock.
	c.copyMu.Lock()
	copyErr := c.copyErr
	c.copyMu.Unlock()
	if err == errHandleFreed {
		return newError(KindClosed, "the agent was closed")
	}
	if err != nil {
		e := err.(*Error)
		if copyErr != nil && e.Kind == KindCancelled && c.ctx.Err() == nil && !closing {
			return copyErr // the cancel came from feedStdin, for this error
		}
		return withContext(c.ctx, e, closing)
	}
	c.Result = &ExecResult{}
	if jerr := json.Unmarshal([]byte(result), c.Result); jerr != nil {
		return newError(KindProtocol, "exec result JSON: "+jerr.Error())
	}
	if copyErr != nil {
		return copyErr
	}
	if c.Result.ExitCode == nil || *c.Result.ExitCode != 0 {
		e := &ExitError{ExitCode: -1, Signal: c.Result.Signal, Result: c.Result}
		if c.Result.ExitCode != nil {
			e.ExitCode = *c.Result.ExitCode
		}
		return e
	}
	return nil
}

// Run starts the command and waits for it.
func (c *Cmd) Run(ctx context.Context) error {
	if err := c.Start(ctx); err != nil {
		return err
	}
	return c.Wait()
}

// Output runs the command and returns its stdout; stderr goes to Stderr
// when set, else it is discarded.
func (c *Cmd) Output(ctx context.Context) ([]byte, error) {
	if c.Stdout != nil {
		return nil, newError(KindInvalidArgument, "Stdout already set")
	}
	var out bytes.Buffer
	c.Stdout = &out
	err := c.Run(ctx)
	return out.Bytes(), err
}

// IsExit reports whether err is an *ExitError (the command ran and ended
// badly) rather than a failure to run it.
func IsExit(err error) bool {
	var e *ExitError
	return errors.As(err, &e)
}

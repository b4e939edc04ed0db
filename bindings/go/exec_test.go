package qtx_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand"
	"strings"
	"syscall"
	"testing"
	"time"

	"qtx.dev/qtx"
)

func TestExec(t *testing.T) {
	p := startAgent(t, testConfig)
	_, a := connect(t, p, qtx.AgentOptions{})
	ctx := ctxFor(t, 30*time.Second)

	t.Run("stdin_stdout_stderr_exit_code", func(t *testing.T) {
		var out, errb bytes.Buffer
		cmd := a.Command("/bin/sh", "-c", "cat; echo E >&2; exit 3")
		cmd.Stdin = strings.NewReader("hello")
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run(ctx)
		var ee *qtx.ExitError
		if !errors.As(err, &ee) || ee.ExitCode != 3 || ee.Signal != 0 || !qtx.IsExit(err) {
			t.Fatalf("%v", err)
		}
		if out.String() != "hello" || errb.String() != "E\n" || *cmd.Result.ExitCode != 3 {
			t.Fatalf("out %q err %q result %+v", out.String(), errb.String(), cmd.Result)
		}
	})
	t.Run("exit_zero_env_dir", func(t *testing.T) {
		cmd := a.Command("/bin/sh", "-c", `pwd; echo "$A"`)
		cmd.Env = []string{"A=from env", "PATH=/usr/bin:/bin"}
		cmd.Dir = "/tmp"
		out, err := cmd.Output(ctx)
		if err != nil || string(out) != "/tmp\nfrom env\n" || cmd.Result.StdoutBytes != 14 {
			t.Fatalf("%q %v %+v", out, err, cmd.Result)
		}
	})
	t.Run("signal", func(t *testing.T) {
		err := a.Command("/bin/sh", "-c", "kill -9 $$").Run(ctx)
		var ee *qtx.ExitError
		if !errors.As(err, &ee) || ee.Signal != int(syscall.SIGKILL) || ee.ExitCode != -1 {
			t.Fatalf("%v", err)
		}
	})
	t.Run("large_stdin_streams_through", func(t *testing.T) {
		data := make([]byte, 3<<20)
		rand.New(rand.NewSource(1)).Read(data)
		sum := sha256.Sum256(data)
		cmd := a.Command("/usr/bin/sha256sum")
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output(ctx)
		if err != nil || !strings.HasPrefix(string(out), hex.EncodeToString(sum[:])+" ") {
			t.Fatalf("%q %v", out, err)
		}
	})
	t.Run("stdout_pipe", func(t *testing.T) {
		cmd := a.Command("/bin/sh", "-c", "head -c 2000000 /dev/zero; echo err >&2")
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, pipe)
		if err != nil || n != 2000000 {
			t.Fatalf("read %d, %v", n, err)
		}
		if err := cmd.Wait(); err != nil || errb.String() != "err\n" {
			t.Fatalf("%v %q", err, errb.String())
		}
	})
	// Streams left to Stdout/Stderr (or nil) are drained by the Cmd to the
	// end: with 3 MB on each (three windows), nothing holds the command.
	t.Run("unread_streams_are_drained", func(t *testing.T) {
		cmd := a.Command("/bin/sh", "-c", "head -c 3000000 /dev/zero >&2; head -c 3000000 /dev/zero")
		if err := cmd.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if cmd.Result.StdoutBytes != 3000000 || cmd.Result.StderrBytes != 3000000 {
			t.Fatalf("%+v", cmd.Result)
		}
	})
	t.Run("pipe_read_to_the_end_other_stream_drained", func(t *testing.T) {
		cmd := a.Command("/bin/sh", "-c", "head -c 3000000 /dev/zero; head -c 3000000 /dev/zero >&2; echo end")
		pipe, _ := cmd.StdoutPipe()
		if err := cmd.Start(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, pipe)
		if err != nil || n != 3000004 {
			t.Fatalf("read %d, %v", n, err)
		}
		if err := cmd.Wait(); err != nil || cmd.Result.StderrBytes != 3000000 {
			t.Fatalf("%v %+v", err, cmd.Result)
		}
		if n, err := pipe.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("a Read after Wait: %d, %v", n, err)
		}
	})
	// The os/exec rule broken: Wait with a pipe unread waits until the
	// context ends, since the unread output fills the shared window.
	t.Run("unread_pipe_holds_wait_until_the_deadline", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		cmd := a.Command("/bin/sh", "-c", "head -c 3000000 /dev/zero; echo end >&2")
		if _, err := cmd.StdoutPipe(); err != nil {
			t.Fatal(err)
		}
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(short); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); !errors.Is(err, qtx.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || errb.Len() != 0 {
			t.Fatalf("%v, stderr %q", err, errb.String())
		}
	})
	t.Run("failing_writer_is_drained", func(t *testing.T) {
		werr := errors.New("the writer failed")
		cmd := a.Command("/bin/sh", "-c", "head -c 3000000 /dev/zero; echo end >&2")
		cmd.Stdout = failingWriter{werr}
		pipe, _ := cmd.StderrPipe()
		if err := cmd.Start(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(pipe)
		if err != nil || string(got) != "end\n" {
			t.Fatalf("%q %v", got, err)
		}
		if err := cmd.Wait(); err != werr || cmd.Result.StdoutBytes != 3000000 || *cmd.Result.ExitCode != 0 {
			t.Fatalf("%v %+v", err, cmd.Result)
		}
	})
	// A Stdin error other than io.EOF is not an end of input: the command
	// is killed and Wait returns the error. The reader fails only once the
	// program echoed "abc", so what came out is exact.
	t.Run("stdin_error_kills_the_command", func(t *testing.T) {
		echoed := make(chan struct{})
		cmd := a.Command("/bin/cat")
		cmd.Stdin = &gatedReader{data: "abc", wait: echoed, err: io.ErrUnexpectedEOF}
		var out bytes.Buffer
		cmd.Stdout = &notifyWriter{w: &out, after: 3, done: echoed}
		err := cmd.Run(ctx)
		if err != io.ErrUnexpectedEOF || out.String() != "abc" || cmd.Result != nil {
			t.Fatalf("%v, out %q, result %+v", err, out.String(), cmd.Result)
		}
	})
	t.Run("deadline_kills_the_command", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		err := a.Command("/bin/sleep", "30").Run(short)
		if !errors.Is(err, qtx.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("cancel_kills_the_command", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cmd := a.Command("/bin/sh", "-c", "echo go; exec sleep 30")
		pipe, _ := cmd.StdoutPipe()
		if err := cmd.Start(cctx); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 3)
		if _, err := readFull(pipe, b); err != nil {
			t.Fatal(err)
		}
		cancel()
		err := cmd.Wait()
		if !errors.Is(err, qtx.ErrCancelled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("%v", err)
		}
	})
	waitFor(t, "calls_in_flight 0", func() bool { return statInt(t, a, "calls_in_flight") == 0 })
}

func TestExecDenied(t *testing.T) {
	p := startAgent(t, "[policy]\ndeny = [\"exec\"]\n")
	_, a := connect(t, p, qtx.AgentOptions{})
	err := a.Command("/bin/true").Run(ctxFor(t, 10*time.Second))
	if !errors.Is(err, qtx.ErrDenied) {
		t.Fatalf("%v", err)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// Agent.Close that begins while Cmd.Start is between starting the exec and
// registering its handle: Start fails with KindClosed and frees the handle
// itself, so Close, which did not see the handle, does not wait for ever.
func TestCloseDuringStart(t *testing.T) {
	p := startAgent(t, testConfig)
	_, a := connect(t, p, qtx.AgentOptions{})
	closed := make(chan error, 1)
	qtx.SetTestHookExecStarted(func() {
		go func() { closed <- a.Close() }()
		<-qtx.AgentClosing(a)
	})
	defer qtx.SetTestHookExecStarted(nil)
	cmd := a.Command("/bin/sleep", "30")
	err := cmd.Start(ctxFor(t, 30*time.Second))
	qtx.SetTestHookExecStarted(nil)
	if err == nil {
		t.Error("Start succeeded on a closing agent")
		_ = cmd.Wait() // releases the handle, so that Close can end
	} else if !errors.Is(err, qtx.ErrClosed) {
		t.Errorf("Start: %v", err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second): // bounds a failing test only
		t.Fatal("Close did not return")
	}
	if err := cmd.Wait(); !errors.Is(err, qtx.ErrInvalidArgument) {
		t.Fatalf("Wait after a failed Start: %v", err)
	}
}

// Agent.Close releases a started Cmd never waited for: its exec handle and
// its cancel token.
func TestCloseReleasesAnUnwaitedCmd(t *testing.T) {
	p := startAgent(t, testConfig)
	_, a := connect(t, p, qtx.AgentOptions{})
	before := qtx.LiveTokens()
	cmd := a.Command("/bin/sleep", "30")
	if err := cmd.Start(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := qtx.LiveTokens(); n != before+1 {
		t.Fatalf("%d tokens live after Start, want %d", n, before+1)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := qtx.LiveTokens(); n != before {
		t.Fatalf("%d tokens live after Close, want %d", n, before)
	}
	if err := cmd.Wait(); !errors.Is(err, qtx.ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	if n := qtx.LiveTokens(); n != before {
		t.Fatalf("%d tokens live after Wait, want %d", n, before)
	}
}

// gatedReader gives data, then (once wait is closed) err.
type gatedReader struct {
	data string
	wait chan struct{}
	err  error
}

func (r *gatedReader) Read(b []byte) (int, error) {
	if r.data != "" {
		n := copy(b, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	<-r.wait
	return 0, r.err
}

// notifyWriter closes done once `after` bytes were written to w.
type notifyWriter struct {
	w     io.Writer
	after int
	done  chan struct{}
}

func (w *notifyWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	if w.after > 0 {
		w.after -= n
		if w.after <= 0 {
			close(w.done)
		}
	}
	return n, err
}

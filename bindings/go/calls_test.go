package qtx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"qtx.dev/qtx"
)

// Denies two requests for the denied-error tests; hostname_set is asked
// with the current name, so even a broken policy would change nothing.
const testConfig = "[policy]\ndeny = [\"file_remove\", \"hostname_set\"]\n[telemetry]\ninterval_ms = 100\n"

func TestUnaryCalls(t *testing.T) {
	p := startAgent(t, testConfig)
	m, a := connect(t, p, qtx.AgentOptions{})
	ctx := ctxFor(t, 20*time.Second)

	if a.State() != qtx.StateReady || a.State().String() != "ready" {
		t.Fatalf("state %v", a.State())
	}
	if !strings.HasPrefix(qtx.Version(), "0.") {
		t.Fatalf("version %q", qtx.Version())
	}
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	info, err := a.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	release := utsString(uts.Release[:])
	if info.Hostname != host || info.KernelRelease != release || info.Agent.InstanceID == "" {
		t.Fatalf("info %+v, want hostname %q, kernel %q", info, host, release)
	}
	name, err := a.Hostname(ctx)
	if err != nil || name != host {
		t.Fatalf("Hostname = %q, %v; want %q", name, err, host)
	}
	now, err := a.Time(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(now); d < -time.Minute || d > time.Minute {
		t.Fatalf("guest time %v is %v away", now, d)
	}

	// The generic call, with a JSON string and with a value to marshal.
	f := filepath.Join(p.dir, "stat-me")
	if err := os.WriteFile(f, []byte("12345"), 0o640); err != nil {
		t.Fatal(err)
	}
	raw, err := a.Call(ctx, `{"file_stat":{"path":"`+f+`"}}`)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		FileStat struct {
			Size json.Number `json:"size"`
		} `json:"file_stat"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.FileStat.Size != "5" {
		t.Fatalf("file_stat answer %s (%v)", raw, err)
	}
	raw2, err := a.Call(ctx, map[string]any{"file_stat": map[string]any{"path": f}})
	if err != nil || !bytes.Equal(raw, raw2) {
		t.Fatalf("Call with a map: %s, %v", raw2, err)
	}
	st, err := a.Stat(ctx, f)
	if err != nil || st.Size != 5 || st.Mode != 0o640 {
		t.Fatalf("Stat = %+v, %v", st, err)
	}

	id, err := a.Identity()
	if err != nil || !bytes.Contains(id, []byte(`"instance_id":"`+info.Agent.InstanceID+`"`)) {
		t.Fatalf("identity %s, %v", id, err)
	}
	text, ctype, err := m.Metrics(qtx.MetricsPrometheusText)
	if err != nil || !strings.Contains(text, "qtx_") || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("metrics %q %q %v", ctype, text, err)
	}
	if n := statInt(t, a, "calls_in_flight"); n != 0 {
		t.Fatalf("calls_in_flight %d after the calls", n)
	}
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

func TestErrorKinds(t *testing.T) {
	p := startAgent(t, testConfig)
	_, a := connect(t, p, qtx.AgentOptions{})
	ctx := ctxFor(t, 20*time.Second)

	t.Run("not_found", func(t *testing.T) {
		_, err := a.Stat(ctx, "/no/such/file")
		e := asError(t, err)
		if !errors.Is(err, qtx.ErrNotFound) || e.Kind != qtx.KindNotFound || e.GuestCode != 4 || e.Retryable() {
			t.Fatalf("%#v", e)
		}
		if errors.Is(err, qtx.ErrDenied) || errors.Is(err, context.Canceled) {
			t.Fatalf("%v matches another kind", err)
		}
	})
	t.Run("invalid_argument", func(t *testing.T) {
		_, err := a.Call(ctx, `{"no_such_request":{}}`)
		if e := asError(t, err); !errors.Is(err, qtx.ErrInvalidArgument) || e.Kind.String() != "invalid_argument" {
			t.Fatalf("%#v", e)
		}
	})
	t.Run("denied", func(t *testing.T) {
		err := a.Remove(ctx, filepath.Join(p.dir, "agent.conf"))
		if e := asError(t, err); !errors.Is(err, qtx.ErrDenied) || e.Retryable() || e.GuestCode == 0 {
			t.Fatalf("%#v", e)
		}
		if _, err := os.Stat(filepath.Join(p.dir, "agent.conf")); err != nil {
			t.Fatal("the denied remove removed the file")
		}
		host, _ := os.Hostname()
		if err := a.SetHostname(ctx, host, false); !errors.Is(err, qtx.ErrDenied) {
			t.Fatalf("SetHostname: %v", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		// A stopped agent answers nothing: the call ends at its deadline.
		p.signal(syscall.SIGSTOP)
		defer p.signal(syscall.SIGCONT)
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := a.Ping(short)
		e := asError(t, err)
		if !errors.Is(err, qtx.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || !e.Retryable() {
			t.Fatalf("%#v", e)
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Fatalf("ended after %v, before its deadline", d)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		p.signal(syscall.SIGSTOP)
		defer p.signal(syscall.SIGCONT)
		cctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- a.Ping(cctx) }()
		waitFor(t, "the ping in flight", func() bool { return statInt(t, a, "calls_in_flight") >= 1 })
		cancel()
		err := <-errc
		if e := asError(t, err); !errors.Is(err, qtx.ErrCancelled) || !errors.Is(err, context.Canceled) ||
			errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%#v", e)
		}
	})
	t.Run("context_done_before_the_call", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := a.Ping(cctx); !errors.Is(err, context.Canceled) || !errors.Is(err, qtx.ErrCancelled) {
			t.Fatalf("%v", err)
		}
		past, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
		defer cancel2()
		if err := a.Ping(past); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, qtx.ErrTimeout) {
			t.Fatalf("%v", err)
		}
	})
	// Everything ended: nothing is left in flight after the agent resumed.
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "calls_in_flight 0", func() bool { return statInt(t, a, "calls_in_flight") == 0 })
}

func TestAgentAbsent(t *testing.T) {
	agentBinary(t)
	m, err := qtx.NewManager()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	dir := t.TempDir()
	a, err := m.AddAgent(qtx.AgentOptions{SocketPath: filepath.Join(dir, "nobody.sock")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 10*time.Second)
	err = a.Ping(ctx)
	if e := asError(t, err); !errors.Is(err, qtx.ErrDisconnected) || !e.Retryable() {
		t.Fatalf("ping with no agent: %#v", e)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err = a.WaitReady(short)
	if !errors.Is(err, qtx.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady with no agent: %v", err)
	}
	if !strings.Contains(err.Error(), "nobody.sock") && !strings.Contains(err.Error(), "never connected") &&
		!strings.Contains(err.Error(), "last connection failure") {
		t.Fatalf("WaitReady's error says nothing of why: %v", err)
	}
	// Another owner of the same socket is refused.
	_, err = m.AddAgent(qtx.AgentOptions{SocketPath: filepath.Join(dir, "nobody.sock")})
	if !errors.Is(err, qtx.ErrAlreadyExists) {
		t.Fatalf("second owner: %v", err)
	}
}

func TestDisconnectedMidCall(t *testing.T) {
	p := startAgent(t, testConfig)
	_, a := connect(t, p, qtx.AgentOptions{})
	ctx := ctxFor(t, 30*time.Second)

	cmd := a.Command("/bin/sh", "-c", "echo started; exec sleep 30")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 8)
	if _, err := readFull(out, line); err != nil || string(line) != "started\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	// A unary call in flight too: the agent is stopped, then killed.
	p.signal(syscall.SIGSTOP)
	errc := make(chan error, 1)
	go func() { errc <- a.Ping(ctx) }()
	waitFor(t, "the ping in flight", func() bool { return statInt(t, a, "calls_in_flight") >= 2 })
	p.kill()
	err = cmd.Wait()
	if e := asError(t, err); !errors.Is(err, qtx.ErrDisconnected) || !e.Retryable() {
		t.Fatalf("exec: %#v", e)
	}
	if err := <-errc; !errors.Is(err, qtx.ErrDisconnected) {
		t.Fatalf("ping: %v", err)
	}
	if n := statInt(t, a, "calls_in_flight"); n != 0 {
		t.Fatalf("calls_in_flight %d", n)
	}
}

func readFull(r interface{ Read([]byte) (int, error) }, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestCloseEndsCallsInFlight(t *testing.T) {
	p := startAgent(t, testConfig)
	_, a := connect(t, p, qtx.AgentOptions{})
	ctx := ctxFor(t, 30*time.Second)
	cmd := a.Command("/bin/sleep", "30")
	if err := cmd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGSTOP)
	defer p.signal(syscall.SIGCONT)
	errc := make(chan error, 1)
	go func() { errc <- a.Ping(ctx) }()
	waitFor(t, "the ping in flight", func() bool { return statInt(t, a, "calls_in_flight") >= 2 })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, qtx.ErrClosed) {
		t.Fatalf("ping in flight at Close: %v", err)
	}
	if err := cmd.Wait(); !errors.Is(err, qtx.ErrClosed) {
		t.Fatalf("exec running at Close: %v", err)
	}
	if err := a.Ping(ctx); !errors.Is(err, qtx.ErrClosed) {
		t.Fatalf("ping after Close: %v", err)
	}
	if _, ok := <-a.Events(); ok {
		// Events may hold samples from before Close; drain them.
		for range a.Events() {
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestManagerCloseClosesItsAgents(t *testing.T) {
	p := startAgent(t, testConfig)
	m, a := connect(t, p, qtx.AgentOptions{})
	ctx := ctxFor(t, 10*time.Second)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Ping(ctx); !errors.Is(err, qtx.ErrClosed) {
		t.Fatalf("ping after the manager closed: %v", err)
	}
	for range a.Events() { // closed: the loop ends
	}
	if _, err := m.AddAgent(qtx.AgentOptions{SocketPath: p.socket}); !errors.Is(err, qtx.ErrClosed) {
		t.Fatalf("AddAgent after Close: %v", err)
	}
	if _, _, err := m.Metrics(qtx.MetricsOpenMetrics); !errors.Is(err, qtx.ErrClosed) {
		t.Fatalf("Metrics after Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

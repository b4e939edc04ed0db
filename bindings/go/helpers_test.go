package qtx_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"qtx.dev/qtx"
)

// agentProc is a real qtx-agent listening on a unix socket, as QEMU's
// chardev (server=on) would; the library connects to it.
type agentProc struct {
	t      *testing.T
	dir    string
	socket string
	cmd    *exec.Cmd
	done   chan struct{}
}

func agentBinary(t *testing.T) string {
	p := os.Getenv("QTX_AGENT_BINARY")
	if p == "" {
		t.Skip("QTX_AGENT_BINARY is not set (CTest sets it; see docs/go.md)")
	}
	return p
}

// startAgent runs qtx-agent with the TOML config `config`; it is killed at
// the test's end.
func startAgent(t *testing.T, config string) *agentProc {
	t.Helper()
	bin := agentBinary(t)
	dir, err := os.MkdirTemp("", "qtxgo")
	if err != nil {
		t.Fatal(err)
	}
	p := &agentProc{t: t, dir: dir, socket: filepath.Join(dir, "agent.sock"), done: make(chan struct{})}
	conf := filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "--config", conf, "--transport", "unix-listen:"+p.socket, "--log-level", "warn")
	p.cmd.Stderr = logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(dir, "agent.log")); err == nil && len(log) > 0 {
				t.Logf("agent log:\n%s", log)
			}
		}
		os.RemoveAll(dir)
	})
	return p
}

func (p *agentProc) signal(s syscall.Signal) {
	if err := p.cmd.Process.Signal(s); err != nil {
		p.t.Fatalf("signal %v: %v", s, err)
	}
}

// kill ends the agent and waits for it.
func (p *agentProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// connect adds an agent for p to a new manager and waits until it is
// ready; both are closed at the test's end.
func connect(t *testing.T, p *agentProc, o qtx.AgentOptions) (*qtx.Manager, *qtx.Agent) {
	t.Helper()
	m, err := qtx.NewManager()
	if err != nil {
		t.Fatal(err)
	}
	o.SocketPath = p.socket
	a, err := m.AddAgent(o)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return m, a
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds; the deadline only bounds a failing
// test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func statInt(t *testing.T, a *qtx.Agent, field string) int64 {
	t.Helper()
	st, err := a.Stats()
	if err != nil {
		t.Fatal(err)
	}
	n, ok := st[field].(interface{ Int64() (int64, error) })
	if !ok {
		t.Fatalf("stats have no %s: %v", field, st)
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// asError asserts that err is an *qtx.Error and returns it.
func asError(t *testing.T, err error) *qtx.Error {
	t.Helper()
	var e *qtx.Error
	if err == nil {
		t.Fatal("expected an error, got nil")
	}
	if !errors.As(err, &e) {
		t.Fatalf("%v (%T) is not a *qtx.Error", err, err)
	}
	return e
}

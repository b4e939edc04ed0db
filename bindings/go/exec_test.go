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

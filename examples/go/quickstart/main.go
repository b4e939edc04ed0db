// Quickstart: the Go binding's tour, the same program as the Python
// example. Give it a VM's agent socket (QEMU's chardev, server=on):
//
//	go run ./quickstart /run/qtx/vm1.sock
//
// It waits for the agent, prints the guest's hostname and kernel, runs a
// command whose output streams back, uploads a small file and downloads it
// back comparing the bytes, and prints three telemetry samples. It exits 0
// on success, 1 with the error on stderr otherwise.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"qtx.dev/qtx"
)

// lineWriter prefixes each line written to it; one mutex for both streams
// keeps their lines whole.
type lineWriter struct {
	mu     *sync.Mutex
	prefix string
	out    io.Writer
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		fmt.Fprintf(w.out, "%s%s\n", w.prefix, w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func run(socket string) error {
	m, err := qtx.NewManager()
	if err != nil {
		return err
	}
	defer m.Close()
	a, err := m.AddAgent(qtx.AgentOptions{SocketPath: socket})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if err := a.WaitReady(ctx); err != nil {
		return fmt.Errorf("waiting for the agent: %w", err)
	}
	info, err := a.Info(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("hostname: %s\nkernel: %s\n", info.Hostname, info.KernelRelease)

	var mu sync.Mutex
	cmd := a.Command("sh", "-c", "echo out; echo err >&2")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdout = &lineWriter{mu: &mu, prefix: "stdout: ", out: os.Stdout}
	cmd.Stderr = &lineWriter{mu: &mu, prefix: "stderr: ", out: os.Stdout}
	if err := cmd.Run(ctx); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	fmt.Printf("exit code: %d\n", *cmd.Result.ExitCode)

	data := []byte(strings.Repeat("qtx quickstart\n", 100))
	guestPath := fmt.Sprintf("/tmp/qtx-quickstart-%d.txt", os.Getpid())
	up, err := a.Upload(ctx, bytes.NewReader(data), guestPath, nil)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	var back bytes.Buffer
	if _, err := a.Download(ctx, guestPath, &back, nil); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if !bytes.Equal(back.Bytes(), data) {
		return errors.New("the downloaded bytes differ from the uploaded ones")
	}
	fmt.Printf("upload and download: %d bytes, sha256 %s, identical\n", up.Bytes, up.SHA256)
	if err := a.Remove(ctx, guestPath); err != nil && !errors.Is(err, qtx.ErrDenied) {
		return fmt.Errorf("remove: %w", err)
	}

	if err := a.SetTelemetryInterval(ctx, 500*time.Millisecond); err != nil {
		return fmt.Errorf("telemetry interval: %w", err)
	}
	for n := 0; n < 3; {
		select {
		case ev, ok := <-a.Events():
			if !ok {
				return errors.New("the agent closed")
			}
			if s, ok := ev.Telemetry(); ok {
				n++
				fmt.Printf("telemetry %d: cpu %.1f%% busy, %d MiB of %d MiB available, %d processes\n",
					s.Seq, s.CPU.BusyPct, s.Memory.AvailableBytes>>20, s.Memory.TotalBytes>>20, s.ProcessCount)
			}
		case <-ctx.Done():
			return fmt.Errorf("telemetry: %w", ctx.Err())
		}
	}
	return nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: quickstart SOCKET")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

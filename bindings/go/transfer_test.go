package qtx_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"qtx.dev/qtx"
)

type failingReader struct{ n int }

func (r *failingReader) Read(b []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("source broke")
	}
	k := len(b)
	if k > r.n {
		k = r.n
	}
	r.n -= k
	return k, nil
}

func TestTransfers(t *testing.T) {
	p := startAgent(t, testConfig)
	_, a := connect(t, p, qtx.AgentOptions{})
	ctx := ctxFor(t, 30*time.Second)
	data := make([]byte, 3<<20+17)
	rand.New(rand.NewSource(2)).Read(data)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	guest := filepath.Join(p.dir, "up.bin")

	t.Run("reader_and_writer", func(t *testing.T) {
		var mu sync.Mutex
		var last, calls int64
		res, err := a.Upload(ctx, bytes.NewReader(data), guest, &qtx.TransferOptions{
			Mode: 0o600, Size: int64(len(data)),
			Progress: func(done, total int64) {
				mu.Lock()
				defer mu.Unlock()
				if done < last || total != int64(len(data)) {
					t.Errorf("progress %d/%d after %d", done, total, last)
				}
				last = done
				calls++
			},
		})
		if err != nil || res.Bytes != int64(len(data)) || res.SHA256 != want {
			t.Fatalf("%+v %v", res, err)
		}
		mu.Lock()
		if calls == 0 || last != int64(len(data)) {
			t.Fatalf("progress: %d calls, last %d", calls, last)
		}
		mu.Unlock()
		st, err := os.Stat(guest)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%v %v", st, err)
		}
		var back bytes.Buffer
		res, err = a.Download(ctx, guest, &back, nil)
		if err != nil || !bytes.Equal(back.Bytes(), data) || res.SHA256 != want {
			t.Fatalf("%+v %v (%d bytes back)", res, err, back.Len())
		}
	})
	t.Run("paths", func(t *testing.T) {
		local := filepath.Join(t.TempDir(), "local.bin")
		if err := os.WriteFile(local, data[:1000], 0o644); err != nil {
			t.Fatal(err)
		}
		guest2 := filepath.Join(p.dir, "up2.bin")
		res, err := a.UploadFile(ctx, local, guest2, nil)
		if err != nil || res.Bytes != 1000 {
			t.Fatalf("%+v %v", res, err)
		}
		back := filepath.Join(t.TempDir(), "back.bin")
		if _, err := a.DownloadFile(ctx, guest2, back, &qtx.TransferOptions{SkipSHA256: true}); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(back)
		if !bytes.Equal(got, data[:1000]) {
			t.Fatal("the file came back different")
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := a.Download(ctx, "/no/such/file", io.Discard, nil)
		if !errors.Is(err, qtx.ErrNotFound) {
			t.Fatalf("%v", err)
		}
		_, err = a.UploadFile(ctx, "/no/such/local/file", filepath.Join(p.dir, "x"), nil)
		if err == nil {
			t.Fatal("upload of a missing local file succeeded")
		}
		// A source that fails abandons the upload: nothing is left behind.
		broken := filepath.Join(p.dir, "broken.bin")
		_, err = a.Upload(ctx, &failingReader{n: 600 << 10}, broken, nil)
		if err == nil || err.Error() != "source broke" {
			t.Fatalf("%v", err)
		}
		waitFor(t, "calls_in_flight 0", func() bool { return statInt(t, a, "calls_in_flight") == 0 })
		if _, err := os.Stat(broken); !os.IsNotExist(err) {
			t.Fatalf("the abandoned upload left %v", err)
		}
	})
}

// cancellingReader gives data forever and cancels the upload's context
// once it has given `after` bytes.
type cancellingReader struct {
	after  int
	given  int
	cancel func()
}

func (r *cancellingReader) Read(b []byte) (int, error) {
	if r.given >= r.after {
		r.cancel()
	}
	r.given += len(b)
	return len(b), nil
}

func TestTransferCancelledMidway(t *testing.T) {
	p := startAgent(t, testConfig)
	_, a := connect(t, p, qtx.AgentOptions{})
	ctx, cancel := context.WithCancel(ctxFor(t, 30*time.Second))
	guest := filepath.Join(p.dir, "cancelled.bin")
	_, err := a.Upload(ctx, &cancellingReader{after: 2 << 20, cancel: cancel}, guest, nil)
	if !errors.Is(err, qtx.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
	waitFor(t, "calls_in_flight 0", func() bool { return statInt(t, a, "calls_in_flight") == 0 })
	if _, err := os.Stat(guest); !os.IsNotExist(err) {
		t.Fatalf("the cancelled upload left %v", err)
	}
	// A download whose deadline passes while the writer is slow.
	if err := os.WriteFile(guest, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctxFor(t, 30*time.Second), 300*time.Millisecond)
	defer cancel2()
	_, err = a.Download(short, guest, slowWriter{}, nil)
	if !errors.Is(err, qtx.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
}

// slowWriter takes its time over every chunk, like a slow disk or peer.
type slowWriter struct{}

func (slowWriter) Write(b []byte) (int, error) {
	time.Sleep(50 * time.Millisecond)
	return len(b), nil
}

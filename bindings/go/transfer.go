package qtx

/*
#include <stdlib.h>
#include <stdint.h>
#include <qtx/host.h>

// Defined in bridge.go's preamble.
void qtxgo_transfer_options(qtx_transfer_options* o, uint32_t timeout_ms, qtx_cancel* cancel, uint32_t mode,
                            int skip_sha256, uint64_t expected_total, uintptr_t user);
*/
import "C"

import (
	"context"
	"io"
	"os"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"unsafe"
)

// TransferOptions tune an upload or a download; the zero value is fine.
type TransferOptions struct {
	Mode       os.FileMode // upload: the new file's permissions; 0: 0644
	SkipSHA256 bool        // no end-to-end sha256 (each chunk is still checked)
	Size       int64       // the size when known, for Progress's total; else 0
	// Progress, when set, is called with the bytes moved so far and the
	// total (0 when unknown). It runs on a goroutine of the transfer, not on
	// the library's I/O thread; reports that arrive while it runs are
	// coalesced into the latest.
	Progress func(done, total int64)
}

// TransferResult is a finished transfer's size and sha256 (hex, empty with
// SkipSHA256).
type TransferResult struct {
	Bytes  int64
	SHA256 string
}

// progressRelay takes progress reports on the I/O thread without blocking
// (the latest report wins) and calls the user's function from a goroutine.
type progressRelay struct {
	fn          func(done, total int64)
	bytes, tot  atomic.Uint64
	kick        chan struct{}
	stop, ended chan struct{}
}

func (p *progressRelay) post(bytes, total uint64) {
	p.bytes.Store(bytes)
	p.tot.Store(total)
	select {
	case p.kick <- struct{}{}:
	default: // a report is pending already; it will read the latest figures
	}
}

func newProgressRelay(fn func(done, total int64)) (*progressRelay, cgo.Handle) {
	if fn == nil {
		return nil, 0
	}
	p := &progressRelay{fn: fn, kick: make(chan struct{}, 1), stop: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(p.ended)
		for {
			select {
			case <-p.kick:
				p.fn(int64(p.bytes.Load()), int64(p.tot.Load()))
			case <-p.stop:
				select {
				case <-p.kick: // the last report, once the transfer ended
					p.fn(int64(p.bytes.Load()), int64(p.tot.Load()))
				default:
				}
				return
			}
		}
	}()
	return p, cgo.NewHandle(p)
}

// finish runs once the library can no longer call back.
func (p *progressRelay) finish(h cgo.Handle) {
	if p == nil {
		return
	}
	close(p.stop)
	<-p.ended
	h.Delete()
}

// transferCall is what every transfer holds while it runs.
type transferCall struct {
	a     *Agent
	ctx   context.Context
	tok   *token
	prog  *progressRelay
	progH cgo.Handle
	// On the C heap: its `user` is a cgo.Handle, an integer in a void*,
	// which must not sit in Go memory where the garbage collector would
	// take it for a pointer. Freed by end.
	opts *C.qtx_transfer_options
}

func (a *Agent) beginTransfer(ctx context.Context, o *TransferOptions) (*transferCall, error) {
	if o == nil {
		o = &TransferOptions{}
	}
	if err := contextError(ctx); err != nil {
		return nil, err
	}
	timeout, err := timeoutMs(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.enter(); err != nil {
		return nil, err
	}
	t := &transferCall{a: a, ctx: ctx, tok: a.newToken(ctx)}
	t.prog, t.progH = newProgressRelay(o.Progress)
	skip := C.int(0)
	if o.SkipSHA256 {
		skip = 1
	}
	size := o.Size
	if size < 0 {
		size = 0
	}
	t.opts = (*C.qtx_transfer_options)(C.malloc(C.sizeof_qtx_transfer_options))
	C.qtxgo_transfer_options(t.opts, C.uint32_t(timeout), t.tok.c, C.uint32_t(o.Mode.Perm()), skip,
		C.uint64_t(size), C.uintptr_t(t.progH))
	return t, nil
}

// end runs once no library call of the transfer can still run.
func (t *transferCall) end() {
	C.free(unsafe.Pointer(t.opts))
	t.tok.release()
	t.prog.finish(t.progH)
	t.a.leave()
}

func (t *transferCall) fail(cerr *C.qtx_error) error {
	return withContext(t.ctx, errorFromC(cerr), t.a.isClosing())
}

// UploadFile copies the local file localPath to guestPath, sha256-checked
// end to end.
func (a *Agent) UploadFile(ctx context.Context, localPath, guestPath string, o *TransferOptions) (TransferResult, error) {
	return a.fileTransfer(ctx, true, localPath, guestPath, o)
}

// DownloadFile copies the guest file guestPath to localPath.
func (a *Agent) DownloadFile(ctx context.Context, guestPath, localPath string, o *TransferOptions) (TransferResult, error) {
	return a.fileTransfer(ctx, false, localPath, guestPath, o)
}

func (a *Agent) fileTransfer(ctx context.Context, up bool, localPath, guestPath string, o *TransferOptions) (TransferResult, error) {
	t, err := a.beginTransfer(ctx, o)
	if err != nil {
		return TransferResult{}, err
	}
	defer t.end()
	cl, cg := C.CString(localPath), C.CString(guestPath)
	defer C.free(unsafe.Pointer(cl))
	defer C.free(unsafe.Pointer(cg))
	var n C.uint64_t
	var sha [65]C.char
	var cerr C.qtx_error
	var rc C.int
	if up {
		rc = C.qtx_agent_upload_file(a.c, cl, cg, t.opts, &n, &sha[0], &cerr)
	} else {
		rc = C.qtx_agent_download_file(a.c, cg, cl, t.opts, &n, &sha[0], &cerr)
	}
	if rc != 0 {
		return TransferResult{}, t.fail(&cerr)
	}
	return TransferResult{Bytes: int64(n), SHA256: C.GoString(&sha[0])}, nil
}

// transferHandle guards a qtx_transfer like execHandle guards an exec.
type transferHandle struct {
	a     *Agent
	mu    sync.RWMutex
	c     *C.qtx_transfer
	freed bool
}

func (h *transferHandle) with(f func(c *C.qtx_transfer) error) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.freed {
		return newError(KindClosed, "the agent was closed")
	}
	return f(h.c)
}

func (h *transferHandle) free() {
	h.mu.RLock()
	if !h.freed {
		C.qtx_transfer_cancel(h.c)
	}
	h.mu.RUnlock()
	h.mu.Lock()
	if h.freed {
		h.mu.Unlock()
		return
	}
	h.freed = true
	C.qtx_transfer_free(h.c)
	h.mu.Unlock()
	h.a.untrack(h)
}

// startTransfer begins an upload or download handle of guestPath, tracked
// by the agent so that Close frees it. On success the caller ends t and
// frees h; on failure neither needs it.
func (a *Agent) startTransfer(ctx context.Context, o *TransferOptions, guestPath string, upload bool) (*transferCall, *transferHandle, error) {
	t, err := a.beginTransfer(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	cg := C.CString(guestPath)
	defer C.free(unsafe.Pointer(cg))
	var cerr C.qtx_error
	var c *C.qtx_transfer
	if upload {
		c = C.qtx_agent_upload_start(a.c, cg, t.opts, &cerr)
	} else {
		c = C.qtx_agent_download_start(a.c, cg, t.opts, &cerr)
	}
	if c == nil {
		err := t.fail(&cerr)
		t.end()
		return nil, nil, err
	}
	h := &transferHandle{a: a, c: c}
	if err := a.track(h); err != nil { // Close began meanwhile
		h.free()
		t.end()
		return nil, nil, err
	}
	return t, h, nil
}

const chunkSize = 256 << 10

// Upload writes everything r gives to guestPath; the guest file is
// replaced atomically once the upload completes and nothing is left when
// it fails. A read error of r abandons the upload and is returned.
func (a *Agent) Upload(ctx context.Context, r io.Reader, guestPath string, o *TransferOptions) (TransferResult, error) {
	t, h, err := a.startTransfer(ctx, o, guestPath, true)
	if err != nil {
		return TransferResult{}, err
	}
	defer t.end()
	defer h.free()
	var cerr C.qtx_error
	buf := make([]byte, chunkSize)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			err := h.with(func(c *C.qtx_transfer) error {
				if rc := C.qtx_transfer_write(c, unsafe.Pointer(&buf[0]), C.size_t(n), &cerr); rc != 0 {
					return t.fail(&cerr)
				}
				return nil
			})
			if err != nil {
				return TransferResult{}, err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return TransferResult{}, rerr // h.free cancels: the guest keeps nothing
		}
		if err := contextError(ctx); err != nil {
			return TransferResult{}, err
		}
	}
	return h.finish(t, true)
}

// finish ends the data (an upload) and waits for the outcome.
func (h *transferHandle) finish(t *transferCall, closeWrite bool) (TransferResult, error) {
	var res TransferResult
	err := h.with(func(c *C.qtx_transfer) error {
		var cerr C.qtx_error
		if closeWrite {
			if rc := C.qtx_transfer_close_write(c, &cerr); rc != 0 {
				return t.fail(&cerr)
			}
		}
		var n C.uint64_t
		var sha [65]C.char
		if rc := C.qtx_transfer_wait(c, &n, &sha[0], &cerr); rc != 0 {
			return t.fail(&cerr)
		}
		res = TransferResult{Bytes: int64(n), SHA256: C.GoString(&sha[0])}
		return nil
	})
	return res, err
}

// Download writes the guest file guestPath to w as it arrives; a slow w
// slows the guest down. A write error of w abandons the download and is
// returned, as does the end of ctx, even when the rest of the data is
// already here. The data written before a failure may be partial: the
// sha256 is checked at the end.
func (a *Agent) Download(ctx context.Context, guestPath string, w io.Writer, o *TransferOptions) (TransferResult, error) {
	t, h, err := a.startTransfer(ctx, o, guestPath, false)
	if err != nil {
		return TransferResult{}, err
	}
	defer t.end()
	defer h.free()
	var cerr C.qtx_error
	buf := make([]byte, chunkSize)
	for {
		var n C.size_t
		err := h.with(func(c *C.qtx_transfer) error {
			if rc := C.qtx_transfer_read(c, unsafe.Pointer(&buf[0]), C.size_t(len(buf)), &n, &cerr); rc != 0 {
				return t.fail(&cerr)
			}
			return nil
		})
		if err != nil {
			return TransferResult{}, err
		}
		if n == 0 {
			break
		}
		if _, werr := w.Write(buf[:n]); werr != nil {
			return TransferResult{}, werr
		}
		// The context bounds the whole call: data the library holds
		// already is not written once it ended.
		if err := contextError(ctx); err != nil {
			return TransferResult{}, err
		}
	}
	return h.finish(t, false)
}

package qtx

/*
#include <stdlib.h>
#include <qtx/host.h>
*/
import "C"

import (
	"sync"
	"unsafe"
)

// Manager owns the library's I/O thread, shared by all its agents.
type Manager struct {
	mu      sync.Mutex
	c       *C.qtx_manager
	closing bool // Close has begun: AddAgent refuses
	agents  map[*Agent]struct{}
}

// NewManager starts a manager. Close it when done.
func NewManager() (*Manager, error) {
	if err := checkVersion(); err != nil {
		return nil, err
	}
	m := C.qtx_manager_new()
	if m == nil {
		return nil, newError(KindLocal, "qtx_manager_new failed")
	}
	return &Manager{c: m, agents: map[*Agent]struct{}{}}, nil
}

// Close closes every agent of the manager (see Agent.Close), then stops
// the I/O thread. Idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return nil
	}
	m.closing = true
	agents := make([]*Agent, 0, len(m.agents))
	for a := range m.agents {
		agents = append(agents, a)
	}
	m.mu.Unlock()
	for _, a := range agents {
		a.Close()
	}
	m.mu.Lock()
	c := m.c
	m.c = nil
	m.mu.Unlock()
	C.qtx_manager_free(c)
	return nil
}

// Metrics format for Manager.Metrics.
const (
	MetricsPrometheusText = int(C.QTX_METRICS_PROMETHEUS_TEXT)
	MetricsOpenMetrics    = int(C.QTX_METRICS_OPENMETRICS)
)

// Metrics renders the metrics of every agent (docs/metrics.md) from what
// the manager holds: no guest is asked. It returns the exposition and its
// Content-Type.
func (m *Manager) Metrics(format int) (string, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.c == nil {
		return "", "", newError(KindClosed, "the manager was closed")
	}
	var out *C.char
	var cerr C.qtx_error
	if rc := C.qtx_manager_render_metrics(m.c, C.int(format), &out, &cerr); rc != 0 {
		return "", "", errorFromC(&cerr)
	}
	defer C.qtx_free(unsafe.Pointer(out))
	return C.GoString(out), C.GoString(C.qtx_metrics_content_type(C.int(format))), nil
}

func (m *Manager) forget(a *Agent) {
	m.mu.Lock()
	delete(m.agents, a)
	m.mu.Unlock()
}

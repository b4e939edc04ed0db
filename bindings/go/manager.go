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
	servers map[*MetricsServer]struct{}
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
	return &Manager{c: m, agents: map[*Agent]struct{}{}, servers: map[*MetricsServer]struct{}{}}, nil
}

// Close closes the manager's metrics servers and every agent of the
// manager (see Agent.Close), then stops
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
	servers := make([]*MetricsServer, 0, len(m.servers))
	for s := range m.servers {
		servers = append(servers, s)
	}
	m.mu.Unlock()
	for _, s := range servers {
		s.Close()
	}
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

// MetricsServer serves GET /metrics for a manager from the library's own
// threads (qtx_metrics_server_start) until Close.
type MetricsServer struct {
	m    *Manager
	mu   sync.Mutex
	c    *C.qtx_metrics_server
	port int
}

// Port is the TCP port the server bound (the one asked for, or the one
// the system chose for port 0).
func (s *MetricsServer) Port() int { return s.port }

// Close stops the server. It can wait for connections still open to it (an
// HTTP client's idle keep-alive connection, until the library's idle
// timeout). Idempotent; Manager.Close also closes it.
func (s *MetricsServer) Close() error {
	s.mu.Lock()
	c := s.c
	s.c = nil
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	C.qtx_metrics_server_free(c)
	s.m.mu.Lock()
	delete(s.m.servers, s)
	s.m.mu.Unlock()
	return nil
}

// ServeMetrics starts serving the manager's metrics (Manager.Metrics) over
// HTTP on address: "127.0.0.1:9756", "[::1]:0", ":9756". Close the server
// when done; closing the manager closes it first, as the library requires.
func (m *Manager) ServeMetrics(address string) (*MetricsServer, error) {
	ca := C.CString(address)
	defer C.free(unsafe.Pointer(ca))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.c == nil || m.closing {
		return nil, newError(KindClosed, "the manager was closed")
	}
	var port C.int
	var cerr C.qtx_error
	c := C.qtx_metrics_server_start(m.c, ca, &port, &cerr)
	if c == nil {
		return nil, errorFromC(&cerr)
	}
	s := &MetricsServer{m: m, c: c, port: int(port)}
	m.servers[s] = struct{}{}
	return s, nil
}

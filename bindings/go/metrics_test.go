package qtx_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"qtx.dev/qtx"
)

// noKeepAlive closes each connection after its response: a server's
// Close waits for the connections it has open.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func getMetrics(t *testing.T, port int) (*http.Response, string) {
	t.Helper()
	res, err := noKeepAlive.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

func TestServeMetrics(t *testing.T) {
	p := startAgent(t, testConfig)
	m, _ := connect(t, p, qtx.AgentOptions{})
	s, err := m.ServeMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if s.Port() <= 0 {
		t.Fatalf("port %d", s.Port())
	}
	res, body := getMetrics(t, s.Port())
	if res.StatusCode != 200 || !strings.Contains(body, "qtx_agent_up{agent=\""+p.socket+"\"} 1\n") {
		t.Fatalf("GET /metrics: %d\n%s", res.StatusCode, body)
	}

	_, err = m.ServeMetrics("no-port")
	if e := asError(t, err); e.Kind != qtx.KindLocal {
		t.Fatalf("ServeMetrics(no-port): %v", err)
	}

	port := s.Port()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := noKeepAlive.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port)); err == nil {
		t.Fatal("the server still answers after Close")
	}
}

// Manager.Close stops a server left open, before the manager (as the
// library requires).
func TestManagerCloseStopsItsMetricsServer(t *testing.T) {
	m, err := qtx.NewManager()
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.ServeMetrics("127.0.0.1:0")
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	if res, _ := getMetrics(t, s.Port()); res.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", res.StatusCode)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := noKeepAlive.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.Port())); err == nil {
		t.Fatal("the server still answers after Manager.Close")
	}
	if err := s.Close(); err != nil { // already closed by the manager
		t.Fatal(err)
	}
	if _, err := m.ServeMetrics("127.0.0.1:0"); !errors.Is(err, qtx.ErrClosed) {
		t.Fatalf("ServeMetrics after Close: %v", err)
	}
}

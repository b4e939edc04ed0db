package qtx_test

import (
	"testing"
	"time"

	"qtx.dev/qtx"
)

func TestTelemetryEvents(t *testing.T) {
	p := startAgent(t, testConfig) // a sample every 100 ms
	_, a := connect(t, p, qtx.AgentOptions{})
	var seqs []uint64
	timeout := time.After(20 * time.Second)
	for len(seqs) < 3 {
		select {
		case ev, ok := <-a.Events():
			if !ok {
				t.Fatal("Events closed")
			}
			if s, ok := ev.Telemetry(); ok {
				if s.Memory.TotalBytes == 0 || s.UnixTimeMs == 0 {
					t.Fatalf("sample %s", s.Raw)
				}
				seqs = append(seqs, uint64(s.Seq))
			}
		case <-timeout:
			t.Fatalf("3 samples did not come; got %v", seqs)
		}
	}
	if !(seqs[0] < seqs[1] && seqs[1] < seqs[2]) {
		t.Fatalf("seqs %v", seqs)
	}
	latest, err := a.LatestTelemetry()
	if err != nil || uint64(latest.Seq) < seqs[2] {
		t.Fatalf("latest %+v %v", latest, err)
	}
}

func TestSlowEventReaderDropsTheNewest(t *testing.T) {
	p := startAgent(t, testConfig)
	_, a := connect(t, p, qtx.AgentOptions{EventBuffer: 1})
	// Nobody reads: the first event stays, the later ones are dropped.
	waitFor(t, "two dropped events", func() bool { return a.DroppedEvents() >= 2 })
	if n := len(a.Events()); n != 1 {
		t.Fatalf("%d events buffered, want 1", n)
	}
	first := <-a.Events()
	latest, err := a.LatestTelemetry()
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := first.Telemetry(); ok && s.Seq >= latest.Seq {
		t.Fatalf("the buffered sample %d is not older than the latest %d", s.Seq, latest.Seq)
	}
}

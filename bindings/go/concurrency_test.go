package qtx_test

import (
	"context"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"qtx.dev/qtx"
)

func osThreads(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// 1,000 unary calls in flight at once hold goroutines, not OS threads.
func TestThousandCallsInFlight(t *testing.T) {
	p := startAgent(t, testConfig)
	_, a := connect(t, p, qtx.AgentOptions{})
	ctx := ctxFor(t, 60*time.Second)
	p.signal(syscall.SIGSTOP) // nothing is answered until SIGCONT
	const n = 1000
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { errs <- a.Ping(ctx) }()
	}
	waitFor(t, "1000 calls in flight", func() bool { return statInt(t, a, "calls_in_flight") >= n })
	th := osThreads(t)
	t.Logf("%d OS threads with %d calls in flight", th, n)
	if th > 64 {
		t.Errorf("%d OS threads with %d calls in flight: calls hold threads", th, n)
	}
	p.signal(syscall.SIGCONT)
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := statInt(t, a, "calls_in_flight"); got != 0 {
		t.Fatalf("calls_in_flight %d", got)
	}
}

// 10,000 calls from many goroutines leave no goroutine, no C memory and no
// call behind.
func TestNoLeaks(t *testing.T) {
	p := startAgent(t, testConfig)
	_, a := connect(t, p, qtx.AgentOptions{})
	ctx := ctxFor(t, 120*time.Second)
	run := func(workers, each int) {
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					var err error
					switch i % 4 {
					case 0:
						err = a.Ping(ctx)
					case 1:
						_, err = a.Hostname(ctx)
					case 2:
						_, err = a.Call(ctx, `{"time_get":{}}`)
					case 3:
						// A call its context cancels at once half the time.
						c, cancel := context.WithCancel(ctx)
						if w%2 == 0 {
							cancel()
						}
						err = a.Ping(c)
						cancel()
						if err != nil && w%2 == 0 {
							err = nil
						}
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			}(w)
		}
		wg.Wait()
	}
	run(20, 50) // warm up the pools
	for i := 0; i < 20; i++ {
		if err := a.Command("/bin/true").Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	goroutines := runtime.NumGoroutine()
	heap := qtx.CHeapInUse()
	tokens := qtx.LiveTokens()

	run(50, 200) // 10,000 calls
	for i := 0; i < 50; i++ {
		if err := a.Command("/bin/true").Run(ctx); err != nil {
			t.Fatal(err)
		}
	}

	waitFor(t, "the goroutine count back", func() bool { return runtime.NumGoroutine() <= goroutines })
	waitFor(t, "calls_in_flight 0", func() bool { return statInt(t, a, "calls_in_flight") == 0 })
	if n := qtx.LiveTokens(); n != tokens {
		t.Fatalf("%d cancel tokens live, %d before", n, tokens)
	}
	runtime.GC()
	grown := int64(qtx.CHeapInUse()) - int64(heap)
	t.Logf("C heap in use: %d bytes before, %+d after 10,000 calls and 50 execs", heap, grown)
	if grown > 256<<10 {
		t.Fatalf("the C heap grew by %d bytes over 10,000 calls", grown)
	}
}

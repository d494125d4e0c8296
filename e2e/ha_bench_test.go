//go:build e2e

package e2e

import (
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHABench measures sign-ins/s and refreshes/s through nginx, on one
// bbolt broker and on three broker replicas on a three-member etcd
// cluster, all on this machine. It runs only with GHBROKER_BENCH=1 (see
// bench/README.md): bench/ha.sh sets it.
func TestHABench(t *testing.T) {
	if os.Getenv("GHBROKER_BENCH") != "1" {
		t.Skip("set GHBROKER_BENCH=1 (bench/ha.sh) to run the store benchmark")
	}
	const workers = 8
	dur := 10 * time.Second
	if d, err := time.ParseDuration(os.Getenv("GHBROKER_BENCH_DURATION")); err == nil {
		dur = d
	}
	for _, engine := range []string{"bolt", "etcd"} {
		t.Run(engine, func(t *testing.T) {
			h := startHABroker(t, engine)
			rr := func(string) string { return "" }
			// Sign-ins: /login → GitHub emulator → /callback → home.
			// raft counts the entries etcd writes during a phase.
			raft := func() uint64 { return 0 }
			if h.etcd != nil {
				raft = h.etcd.raftIndex
			}
			r0 := raft()
			signIns := run(t, workers, dur, func() error { return h.signIn(newHAClient(h.issuer, rr)) })
			signInRaft := raft() - r0
			// Refreshes: each worker rotates its own family.
			var families [workers]string
			for i := range families {
				c := newHAClient(h.issuer, rr)
				if err := h.signIn(c); err != nil {
					t.Fatal(err)
				}
				tok, err := h.tokens(c)
				if err != nil {
					t.Fatal(err)
				}
				families[i] = tok["refresh_token"].(string)
			}
			var next atomic.Int64
			clients := make([]*haClient, workers)
			for i := range clients {
				clients[i] = newHAClient(h.issuer, rr)
			}
			r0 = raft()
			refreshes := runIndexed(t, workers, dur, func(i int) error {
				next.Add(1)
				tok, err := h.token(clients[i], url.Values{"grant_type": {"refresh_token"}, "refresh_token": {families[i]}})
				if err != nil {
					return err
				}
				families[i] = tok["refresh_token"].(string)
				return nil
			})
			refreshRaft := raft() - r0
			msg := fmt.Sprintf("%s (%d replicas): %.0f sign-ins/s, %.0f refreshes/s (%d workers, %s each)",
				engine, len(h.replicas), signIns.perSec, refreshes.perSec, workers, dur)
			if h.etcd != nil {
				msg += fmt.Sprintf("; raft entries per sign-in %.2f, per refresh %.2f",
					float64(signInRaft)/float64(signIns.ops), float64(refreshRaft)/float64(refreshes.ops))
			}
			t.Log(msg)
			fmt.Println("BENCH", msg)
		})
	}
}

// rate is what a benchmark phase completed.
type rate struct {
	ops    int64
	perSec float64
}

// run calls op from workers goroutines for dur and returns the operations
// completed; any error fails the test.
func run(t *testing.T, workers int, dur time.Duration, op func() error) rate {
	return runIndexed(t, workers, dur, func(int) error { return op() })
}

func runIndexed(t *testing.T, workers int, dur time.Duration, op func(worker int) error) rate {
	t.Helper()
	var done atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	stop := began.Add(dur)
	for w := range workers {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if err := op(w); err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return rate{ops: done.Load(), perSec: float64(done.Load()) / time.Since(began).Seconds()}
}

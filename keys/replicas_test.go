package keys_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/internal/testclock"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/etcd"
	"github.com/ghbroker/ghbroker/store/etcd/etcdtest"
	"github.com/ghbroker/ghbroker/store/memory"
)

// replicaStores opens n handles on one store, as n broker replicas would:
// n times the same memory store, or n etcd stores on one prefix.
func replicaStores(t *testing.T, engine string, n int, now func() time.Time) []store.KeyStore {
	t.Helper()
	if engine == "memory" {
		st := memory.New(memory.Options{Now: now})
		return slices.Repeat([]store.KeyStore{st}, n)
	}
	srv := etcdtest.Start(t)
	var out []store.KeyStore
	for range n {
		st, err := etcd.Open(context.Background(), etcd.Options{Endpoints: srv.Endpoints(), Now: now, MonitorEvery: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		out = append(out, st)
	}
	return out
}

// TestRotateOncePerPeriod has three replicas find the rotation due at the
// same instant: exactly one rotates, and all three end up with its keys.
func TestRotateOncePerPeriod(t *testing.T) {
	for _, engine := range []string{"memory", "etcd"} {
		t.Run(engine, func(t *testing.T) {
			clk := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			stores := replicaStores(t, engine, 3, clk.Now)
			opts := keys.Options{Algorithm: keys.ES256, RotateEvery: 24 * time.Hour, MaxTokenLifetime: time.Hour, Now: clk.Now}
			var ms []*keys.Manager
			for _, st := range stores {
				m, err := keys.NewManager(t.Context(), st, opts)
				if err != nil {
					t.Fatal(err)
				}
				ms = append(ms, m)
			}
			before := ms[0].Keys()
			clk.Advance(24 * time.Hour)
			var rotated atomic.Int32
			var wg sync.WaitGroup
			for _, m := range ms {
				wg.Go(func() {
					changed, err := m.Rotate(t.Context(), false)
					if err != nil {
						t.Errorf("Rotate: %v", err)
					}
					if changed {
						rotated.Add(1)
					}
				})
			}
			wg.Wait()
			if n := rotated.Load(); n != 1 {
				t.Fatalf("%d of 3 replicas rotated, want exactly 1", n)
			}
			for i, m := range ms {
				k := m.Keys()
				if k.Current.KID != before.Next.KID || len(k.Previous) != 1 || k.Previous[0].KID != before.Current.KID {
					t.Errorf("replica %d after the rotation: current %s, previous %v; want %s, [%s]",
						i, k.Current.KID, k.Previous, before.Next.KID, before.Current.KID)
				}
			}
		})
	}
}

// TestWatchServesRotationWithinSeconds runs two replicas on etcd with a
// rotation-check interval of an hour: a rotation by one (as `keys rotate`
// does) reaches the other's JWKS through the watch, within seconds.
func TestWatchServesRotationWithinSeconds(t *testing.T) {
	stores := replicaStores(t, "etcd", 2, time.Now)
	opts := keys.Options{Algorithm: keys.ES256}
	a, err := keys.NewManager(t.Context(), stores[0], opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := keys.NewManager(t.Context(), stores[1], opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { b.Run(ctx, time.Hour) })

	// The watch may take a moment to start: rotate until b follows.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := a.Rotate(t.Context(), true); err != nil {
			t.Fatal(err)
		}
		want := a.Keys().Current.KID
		for range 20 {
			if b.Keys().Current.KID == want {
				if !slices.Contains(jwksKIDs(t, b), want) {
					t.Fatalf("b's JWKS lacks the new current key %s", want)
				}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica b still signs with %s after a's rotation to %s", b.Keys().Current.KID, want)
		}
	}
}

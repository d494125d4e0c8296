package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/store"
)

// testCounters checks store.CounterStore: the bounds, expiry by the
// store's clock (and Sweep, for an engine that sweeps), and concurrent
// adders on every handle, none lost and never past the limit.
func (s *suite) testCounters(t *testing.T) {
	t.Run("Bounds", s.testCounterBounds)
	t.Run("Expiry", s.testCounterExpiry)
	t.Run("NoLostAdds", s.testCounterNoLostAdds)
	t.Run("LimitExact", s.testCounterLimitExact)
}

// add calls AddToCounter and fails the test unless it answers n, added.
func add(t *testing.T, st store.Store, id string, delta, limit int, expires time.Time, wantN int, wantAdded bool) {
	t.Helper()
	n, added, err := st.AddToCounter(t.Context(), id, delta, limit, expires)
	if err != nil || n != wantN || added != wantAdded {
		t.Fatalf("AddToCounter(%q, %+d, limit %d) = %d, %v, %v; want %d, %v, nil", id, delta, limit, n, added, err, wantN, wantAdded)
	}
}

func (s *suite) testCounterBounds(t *testing.T) {
	st, _ := s.newStore(t)
	exp := start.Add(time.Hour)
	add(t, st, "a", 1, 3, exp, 1, true)
	add(t, st, "a", 1, 3, exp, 2, true)
	add(t, st, "a", 1, 3, exp, 3, true)
	add(t, st, "a", 1, 3, exp, 3, false) // at the limit: nothing added
	add(t, st, "a", 0, 3, exp, 3, true)  // a read
	add(t, st, "a", -1, 3, exp, 2, true)
	add(t, st, "a", 2, 3, exp, 2, false) // 4 would pass the limit
	add(t, st, "a", -2, 3, exp, 0, true)
	add(t, st, "a", -1, 3, exp, 0, false) // never below 0
	add(t, st, "a", 5, 5, exp, 5, true)   // a larger limit on the same counter
	// Counters are independent; one that does not exist counts 0, and a
	// refused add does not create it.
	add(t, st, "b", -1, 10, exp, 0, false)
	add(t, st, "b", 1, 0, exp, 0, false)
	add(t, st, "b", 1, 1, exp, 1, true)
	add(t, st, "a", 0, 5, exp, 5, true)
	// Ids are opaque: slashes, spaces and colons are just characters.
	add(t, st, "device/user codes:1767322980", 1, 1, exp, 1, true)
	add(t, st, "device", 1, 1, exp, 1, true)
	if _, _, err := st.AddToCounter(t.Context(), "", 1, 1, exp); err == nil {
		t.Error("AddToCounter with an empty id succeeded")
	}
}

// testCounterExpiry: a counter keeps the expiry it was created with, reads
// as 0 once the store's clock passes it, and starts again from there.
func (s *suite) testCounterExpiry(t *testing.T) {
	st, clk := s.newStore(t)
	add(t, st, "w", 1, 10, start.Add(time.Minute), 1, true)
	add(t, st, "w", 1, 10, start.Add(time.Hour), 2, true) // the first expiry stays
	clk.Advance(time.Minute)
	add(t, st, "w", 0, 10, start.Add(time.Hour), 2, true) // not before its expiry
	clk.Advance(time.Nanosecond)
	add(t, st, "w", 0, 10, start.Add(time.Hour), 0, true)
	add(t, st, "w", -1, 10, start.Add(time.Hour), 0, false)
	add(t, st, "w", 1, 10, clk.Now().Add(time.Minute), 1, true) // a new counter, with the new expiry
	clk.Advance(time.Minute + time.Nanosecond)
	add(t, st, "w", 0, 10, clk.Now().Add(time.Hour), 0, true)
	if s.leases {
		return
	}
	// The expired counter is still stored until Sweep deletes it.
	add(t, st, "kept", 1, 1, clk.Now().Add(time.Hour), 1, true)
	n, err := st.Sweep(t.Context(), clk.Now())
	if err != nil || n != 1 {
		t.Errorf("Sweep = %d, %v; want 1 (the expired counter), nil", n, err)
	}
	add(t, st, "kept", 0, 1, clk.Now().Add(time.Hour), 1, true)
}

// testCounterNoLostAdds has goroutines on every handle add 1 to one
// counter with room for all: the count ends at their number, and each saw
// a value of its own.
func (s *suite) testCounterNoLostAdds(t *testing.T) {
	st, clk := s.newStore(t)
	hs := s.handles(t, st, clk)
	exp := start.Add(time.Hour)
	var mu sync.Mutex
	seen := map[int]int{}
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			n, added, err := hs[i%len(hs)].AddToCounter(t.Context(), "c", 1, 1000, exp)
			if err != nil || !added {
				t.Errorf("AddToCounter = %d, %v, %v; want added", n, added, err)
				return
			}
			mu.Lock()
			seen[n]++
			mu.Unlock()
		})
	}
	wg.Wait()
	add(t, st, "c", 0, 1000, exp, goroutines, true)
	for v := 1; v <= goroutines; v++ {
		if seen[v] != 1 {
			t.Errorf("value %d returned to %d adders, want 1", v, seen[v])
		}
	}
}

// counterLimit is the room testCounterLimitExact leaves its goroutines.
const counterLimit = 30

// testCounterLimitExact has goroutines on every handle race for a limit
// smaller than their number: exactly the limit add, the rest are refused,
// and the count ends at the limit. Then releases (subtracting 1) race with
// more adders: every release succeeds, no more adds succeed than the room
// the releases made, no answer is outside 0 and the limit, and the count
// ends at what the successful calls add up to.
func (s *suite) testCounterLimitExact(t *testing.T) {
	st, clk := s.newStore(t)
	hs := s.handles(t, st, clk)
	exp := start.Add(time.Hour)
	var added atomic.Int32
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			n, ok, err := hs[i%len(hs)].AddToCounter(t.Context(), "budget", 1, counterLimit, exp)
			switch {
			case err != nil:
				t.Errorf("AddToCounter: %v", err)
			case ok:
				added.Add(1)
			case n != counterLimit:
				t.Errorf("a refused add saw %d, want the limit %d", n, counterLimit)
			}
		})
	}
	wg.Wait()
	if got := added.Load(); got != counterLimit {
		t.Errorf("%d of %d racing adders added, want exactly %d", got, goroutines, counterLimit)
	}
	add(t, st, "budget", 0, counterLimit, exp, counterLimit, true)

	// 20 releases against 50 adders: the count never falls below
	// 30 - 20, so every release succeeds.
	const releases = 20
	added.Store(0)
	var released atomic.Int32
	for i := range goroutines + releases {
		wg.Go(func() {
			delta := 1
			if i < releases {
				delta = -1
			}
			n, ok, err := hs[i%len(hs)].AddToCounter(t.Context(), "budget", delta, counterLimit, exp)
			switch {
			case err != nil:
				t.Errorf("AddToCounter(%+d): %v", delta, err)
			case n < 0 || n > counterLimit:
				t.Errorf("AddToCounter(%+d) = %d, outside 0..%d", delta, n, counterLimit)
			case ok && delta < 0:
				released.Add(1)
			case ok:
				added.Add(1)
			}
		})
	}
	wg.Wait()
	if got := released.Load(); got != releases {
		t.Errorf("%d of %d releases succeeded, want all", got, releases)
	}
	if got := added.Load(); got > releases {
		t.Errorf("%d adds succeeded after %d releases from a full counter", got, releases)
	}
	n, _, err := st.AddToCounter(t.Context(), "budget", 0, counterLimit, exp)
	if err != nil || n != counterLimit-releases+int(added.Load()) {
		t.Errorf("after %d releases and %d adds the count is %d, %v; want %d", releases, added.Load(), n, err, counterLimit-releases+int(added.Load()))
	}
}

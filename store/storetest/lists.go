package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/store"
)

// testListSessions: ListSessions returns every live session, and no
// expired or deleted one.
func (s *suite) testListSessions(t *testing.T) {
	st, clk := s.newStore(t)
	ctx := t.Context()
	for i, exp := range []time.Duration{time.Hour, 2 * time.Hour, time.Minute} {
		sess := fullSession()
		sess.ID = fmt.Sprintf("sid-%d", i)
		sess.Expires = start.Add(exp)
		if err := st.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DeleteSession(ctx, "sid-1"); err != nil {
		t.Fatal(err)
	}
	ids := func() []string {
		t.Helper()
		ss, err := st.ListSessions(ctx)
		if err != nil {
			t.Fatalf("ListSessions: %v", err)
		}
		var out []string
		for _, x := range ss {
			out = append(out, x.ID)
		}
		slices.Sort(out)
		return out
	}
	if got := ids(); !slices.Equal(got, []string{"sid-0", "sid-2"}) {
		t.Errorf("ListSessions = %v, want sid-0 and sid-2", got)
	}
	if s.leases {
		return // expiry in real time is ExpiryObserved's
	}
	clk.Advance(30 * time.Minute)
	if got := ids(); !slices.Equal(got, []string{"sid-0"}) {
		t.Errorf("after sid-2 expired: ListSessions = %v, want sid-0", got)
	}
}

// testFirstDelivery: of many callers (on several handles) recording one
// delivery id, exactly one is told it is new, and the id is remembered.
func (s *suite) testFirstDelivery(t *testing.T) {
	st, clk := s.newStore(t)
	hs := s.handles(t, st, clk)
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			first, err := hs[i%len(hs)].FirstDelivery(t.Context(), "72d3162e-cc78-11e3-81ab-4c9367dc0958", start.Add(72*time.Hour))
			if err != nil {
				t.Errorf("FirstDelivery: %v", err)
			}
			if first {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if n := firsts.Load(); n != 1 {
		t.Errorf("%d callers were told the delivery is new, want 1", n)
	}
	if first, err := st.FirstDelivery(t.Context(), "another-id", start.Add(time.Hour)); err != nil || !first {
		t.Errorf("another delivery: %v, %v", first, err)
	}
}

// testRevocations: revocation entries are kept until they expire, and
// every handle on the data sees them.
func (s *suite) testRevocations(t *testing.T) {
	st, clk := s.newStore(t)
	ctx := t.Context()
	for i, r := range []store.Revocation{
		{ID: "r1", Subject: "583231", Before: 1_700_000_000_123, Source: "webhook", Expires: start.Add(time.Hour)},
		{ID: "r2", Session: "sid-1", Source: "logout", Expires: start.Add(2 * time.Minute)},
	} {
		if err := st.AddRevocation(ctx, r); err != nil {
			t.Fatalf("AddRevocation %d: %v", i, err)
		}
	}
	if err := st.AddRevocation(ctx, store.Revocation{ID: "r1", Expires: start.Add(time.Hour)}); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("a second entry with r1's id: %v", err)
	}
	for _, h := range s.handles(t, st, clk) {
		got, err := h.Revocations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, func(a, b store.Revocation) int { return strings.Compare(a.ID, b.ID) })
		if len(got) != 2 || got[0].Subject != "583231" || got[0].Before != 1_700_000_000_123 || got[1].Session != "sid-1" {
			t.Errorf("Revocations = %+v", got)
		}
	}
	if s.leases {
		return
	}
	clk.Advance(5 * time.Minute)
	if got, err := st.Revocations(ctx); err != nil || len(got) != 1 || got[0].ID != "r1" {
		t.Errorf("after r2 expired: %+v, %v", got, err)
	}
}

package storetest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/store"
)

// testRaces checks what several replicas of the broker rely on when they
// hit one record at the same instant: no lost update, one winner of a
// single use, a retried read-modify-write that sees the winner's value,
// and one key rotation however many rotators find it due.
func (s *suite) testRaces(t *testing.T) {
	t.Run("RefreshFamilyGenerations", s.testFamilyGenerations)
	t.Run("RedeemOnce", s.testRedeemOnce)
	t.Run("NestedUpdate", s.testNestedUpdate)
	t.Run("RotateOnce", s.testRotateOnce)
	t.Run("SecretOnce", s.testSecretOnce)
}

// testSecretOnce has goroutines on every handle ask for one missing secret
// at once, each with a generator of its own: they all get one value.
func (s *suite) testSecretOnce(t *testing.T) {
	st, clk := s.newStore(t)
	hs := s.handles(t, st, clk)
	got := make([][]byte, goroutines)
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			v, err := hs[i%len(hs)].GetOrCreateSecret(t.Context(), "cookie", func() ([]byte, error) {
				return []byte(fmt.Sprintf("secret-%d", i)), nil
			})
			if err != nil {
				t.Errorf("GetOrCreateSecret: %v", err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for i, v := range got {
		if string(v) != string(got[0]) {
			t.Fatalf("goroutine %d got secret %q, goroutine 0 got %q: one secret must win", i, v, got[0])
		}
	}
}

// familyWriters is how many goroutines rotate one refresh family.
const familyWriters = 100

// testFamilyGenerations has 100 goroutines rotate one refresh family, each
// writing generation n+1 over the n it read (kept in CurrentHash, as
// "gen-N"): a lost update shows as a short count, a split family as two
// goroutines that wrote the same generation.
func (s *suite) testFamilyGenerations(t *testing.T) {
	st, clk := s.newStore(t)
	hs := s.handles(t, st, clk)
	f := fullRefreshFamily()
	f.Revoked, f.CurrentHash = false, "gen-0"
	if err := st.CreateRefreshFamily(t.Context(), f); err != nil {
		t.Fatalf("CreateRefreshFamily: %v", err)
	}
	var mu sync.Mutex
	wrote := map[int]int{} // generation → how many goroutines committed it
	var wg sync.WaitGroup
	for i := range familyWriters {
		wg.Go(func() {
			var gen int
			err := hs[i%len(hs)].UpdateRefreshFamily(t.Context(), f.ID, func(f store.RefreshFamily) (store.RefreshFamily, error) {
				n, err := strconv.Atoi(strings.TrimPrefix(f.CurrentHash, "gen-"))
				if err != nil {
					return f, err
				}
				gen = n + 1
				f.CurrentHash = fmt.Sprintf("gen-%d", gen)
				return f, nil
			})
			if err != nil {
				t.Errorf("UpdateRefreshFamily: %v", err)
				return
			}
			mu.Lock()
			wrote[gen]++
			mu.Unlock()
		})
	}
	wg.Wait()
	got, err := st.GetRefreshFamily(t.Context(), f.ID)
	if err != nil {
		t.Fatalf("GetRefreshFamily: %v", err)
	}
	if want := fmt.Sprintf("gen-%d", familyWriters); got.CurrentHash != want {
		t.Errorf("after %d concurrent rotations: %s, want %s", familyWriters, got.CurrentHash, want)
	}
	for gen, n := range wrote {
		if n != 1 {
			t.Errorf("generation %d committed by %d goroutines, want 1", gen, n)
		}
	}
	if len(wrote) != familyWriters {
		t.Errorf("%d distinct generations committed, want %d", len(wrote), familyWriters)
	}
}

// redeemers is how many goroutines redeem one code.
const redeemers = 20

// errUsed is what a redemption closure returns for a used code.
var errUsed = errors.New("storetest: code already used")

// testRedeemOnce has 20 goroutines redeem one authorization code at once:
// exactly one finds it unused, and the code records that one.
func (s *suite) testRedeemOnce(t *testing.T) {
	st, clk := s.newStore(t)
	hs := s.handles(t, st, clk)
	c := fullAuthCode()
	c.Used, c.FamilyID = false, ""
	if err := st.CreateAuthCode(t.Context(), c); err != nil {
		t.Fatalf("CreateAuthCode: %v", err)
	}
	var winners atomic.Int32
	var winner atomic.Value
	var wg sync.WaitGroup
	for i := range redeemers {
		wg.Go(func() {
			me := fmt.Sprintf("family-%d", i)
			err := hs[i%len(hs)].UpdateAuthCode(t.Context(), c.ID, func(c store.AuthCode) (store.AuthCode, error) {
				if c.Used {
					return c, errUsed
				}
				c.Used, c.FamilyID = true, me
				return c, nil
			})
			switch {
			case err == nil:
				winners.Add(1)
				winner.Store(me)
			case !errors.Is(err, errUsed):
				t.Errorf("UpdateAuthCode = %v, want nil or the closure's error", err)
			}
		})
	}
	wg.Wait()
	if n := winners.Load(); n != 1 {
		t.Fatalf("%d of %d concurrent redemptions won, want exactly 1", n, redeemers)
	}
	var got store.AuthCode
	err := st.UpdateAuthCode(t.Context(), c.ID, func(c store.AuthCode) (store.AuthCode, error) {
		got = c
		return c, errUsed
	})
	if !errors.Is(err, errUsed) {
		t.Fatalf("reading the code back: %v", err)
	}
	if !got.Used || got.FamilyID != winner.Load() {
		t.Errorf("stored code: used %v, family %q; want used by the winner %q", got.Used, got.FamilyID, winner.Load())
	}
}

// interfererWait bounds how long the outer closure of testNestedUpdate
// waits for the interfering writer. An engine that serialises writers
// makes the interferer wait for the outer transaction, so the wait always
// runs out there; the test's outcome does not depend on the wait's length.
const interfererWait = 300 * time.Millisecond

// testNestedUpdate starts a second writer of the same session while the
// first one's closure runs. Whatever the engine's concurrency model, no
// update is lost: an engine that detects the conflict (compare-and-swap)
// runs the first closure again on the second writer's value, once; an
// engine that serialises writers (one writer lock) runs it once, and the
// second writer after it.
func (s *suite) testNestedUpdate(t *testing.T) {
	st, clk := s.newStore(t)
	hs := s.handles(t, st, clk)
	other := hs[len(hs)-1]
	sess := fullSession()
	sess.Login = "0"
	if err := st.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	increment := func(s store.Session) (store.Session, error) {
		n, err := strconv.Atoi(s.Login)
		s.Login = strconv.Itoa(n + 1)
		return s, err
	}
	var (
		seen        []string // the value each run of the outer closure saw
		interfered  = make(chan error, 1)
		doneInTime  bool
		interferers sync.WaitGroup
	)
	err := st.UpdateSession(t.Context(), sess.ID, func(s store.Session) (store.Session, error) {
		seen = append(seen, s.Login)
		if len(seen) == 1 {
			interferers.Go(func() { interfered <- other.UpdateSession(t.Context(), sess.ID, increment) })
			select {
			case err := <-interfered:
				interfered <- err
				doneInTime = true
			case <-time.After(interfererWait):
			}
		}
		return increment(s)
	})
	if err != nil {
		t.Fatalf("outer UpdateSession: %v", err)
	}
	interferers.Wait()
	if err := <-interfered; err != nil {
		t.Fatalf("interfering UpdateSession: %v", err)
	}
	got, err := st.GetSession(t.Context(), sess.ID)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if got.Login != "2" {
		t.Errorf("after two increments the counter is %s, want 2 (an update was lost)", got.Login)
	}
	switch {
	case doneInTime && (len(seen) != 2 || seen[1] != "1"):
		t.Errorf("the second writer committed while the first closure ran; the first closure ran %d times seeing %v, want twice seeing [0 1] (one conflict, then success)", len(seen), seen)
	case !doneInTime && len(seen) != 1:
		t.Errorf("the second writer waited for the first, yet the first closure ran %d times seeing %v, want once", len(seen), seen)
	}
	t.Logf("closure runs: %d (the second writer %s)", len(seen), map[bool]string{true: "conflicted", false: "was serialised"}[doneInTime])
}

// rotators is how many replicas find one key rotation due at once.
const rotators = 3

// errNotDue aborts a rotation closure that finds the rotation done.
var errNotDue = errors.New("storetest: rotation not due")

// testRotateOnce has three rotators find the key set due at the same
// instant; each re-checks inside its update, as keys.Manager.Rotate does.
// Exactly one rotates.
func (s *suite) testRotateOnce(t *testing.T) {
	st, clk := s.newStore(t)
	hs := s.handles(t, st, clk)
	k := fullKeys()
	k.NextRotation = start
	setKeys(t, st, k)
	var rotations atomic.Int32
	var wg sync.WaitGroup
	for i := range rotators {
		wg.Go(func() {
			err := hs[i%len(hs)].UpdateKeys(t.Context(), func(k store.Keys) (store.Keys, error) {
				if k.NextRotation.After(start) {
					return k, errNotDue
				}
				k.Previous = append(k.Previous, *k.Current)
				k.Current, k.Next = k.Next, &store.SigningKey{KID: fmt.Sprintf("next-%d", i), Algorithm: "ES256"}
				k.NextRotation = start.Add(24 * time.Hour)
				return k, nil
			})
			switch {
			case err == nil:
				rotations.Add(1)
			case !errors.Is(err, errNotDue):
				t.Errorf("UpdateKeys: %v", err)
			}
		})
	}
	wg.Wait()
	if n := rotations.Load(); n != 1 {
		t.Fatalf("%d of %d concurrent rotators rotated, want exactly 1", n, rotators)
	}
	got, err := st.GetKeys(t.Context())
	if err != nil {
		t.Fatalf("GetKeys: %v", err)
	}
	if got.Current.KID != "kid-next" || len(got.Previous) != 2 {
		t.Errorf("after one rotation: current %s, %d previous; want kid-next, 2", got.Current.KID, len(got.Previous))
	}
}

// shortLife is the lifetime of the records testExpiryObserved watches go.
const shortLife = time.Second

// testExpiryObserved creates a short-lived record of every kind and
// watches it go: an engine with leases deletes it by itself in real time
// (the store's clock does not move; the suite polls for at most 15 s); any
// other engine hides it once its clock passes the expiry, and Sweep then
// deletes it.
func (s *suite) testExpiryObserved(t *testing.T) {
	st, clk := s.newStore(t)
	ks := kinds()
	for _, k := range ks {
		mustCreate(t, st, k, "short", "short", clk.Now().Add(shortLife))
		mustCreate(t, st, k, "long", "long", clk.Now().Add(time.Hour))
		wantMark(t, st, k, "short", "short")
	}
	if !s.leases {
		clk.Advance(shortLife + time.Nanosecond)
		for _, k := range ks {
			wantNotFound(t, st, k, "short")
			wantMark(t, st, k, "long", "long")
		}
		if n, err := st.Sweep(t.Context(), clk.Now()); err != nil || n != len(ks) {
			t.Errorf("Sweep = %d, %v; want %d, nil", n, err, len(ks))
		}
		return
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, k := range ks {
		for {
			_, err := k.read(t.Context(), st, "short")
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			if err != nil {
				t.Fatalf("read %s: %v", k.name, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s with a %s lifetime still there after 15 s: the engine did not expire it", k.name, shortLife)
			}
			time.Sleep(100 * time.Millisecond)
		}
		wantMark(t, st, k, "long", "long")
	}
}

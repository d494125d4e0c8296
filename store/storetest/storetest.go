// Package storetest is the conformance suite every store.Store engine must
// pass. An engine's own test calls Run with a function that opens a fresh,
// empty store on the clock the suite drives.
//
// It owns the storage contract as executable checks: expiry read through
// the store's clock, ErrNotFound and ErrAlreadyExists, update closures that
// abort cleanly, copies rather than shared memory, read-modify-writes that
// lose no update however many writers race (on several handles, for an
// engine that replicas share: Replicas), counters that stop exactly at
// their limit however many adders race, single use with one winner, one
// key rotation per period, expiry observed (by the clock, or by the engine
// in real time: ExpiresByLease), Sweep and Close. It does not test anything
// engine-specific (file locking, on-disk format); each engine tests that
// itself.
package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/store"
)

// Run runs the conformance suite against the engine that open creates.
//
// open must return a new, empty store that reads the time only through now.
// The suite closes every store it gets, except in the Close subtest, where
// it closes the store once itself and expects every later call to fail.
func Run(t *testing.T, open func(t *testing.T, now func() time.Time) store.Store, opts ...Option) {
	t.Helper()
	s := &suite{open: open}
	for _, o := range opts {
		o(s)
	}
	t.Run("Kinds", s.testKinds)
	t.Run("Session", s.testSession)
	t.Run("AuthCode", s.testAuthCode)
	t.Run("RefreshFamily", s.testRefreshFamily)
	t.Run("DeviceCode", s.testDeviceCode)
	t.Run("Keys", s.testKeys)
	t.Run("Secret", s.testSecret)
	if s.leases {
		t.Run("Sweep", s.testSweepNothing)
	} else {
		t.Run("Sweep", s.testSweep)
	}
	t.Run("ListSessions", s.testListSessions)
	t.Run("FirstDelivery", s.testFirstDelivery)
	t.Run("Revocations", s.testRevocations)
	t.Run("Counters", s.testCounters)
	t.Run("Races", s.testRaces)
	t.Run("ExpiryObserved", s.testExpiryObserved)
	t.Run("CanceledContext", s.testCanceledContext)
	t.Run("Close", s.testClose)
}

// start is the time every store under test starts at.
var start = time.Date(2026, time.March, 4, 5, 6, 7, 8, time.UTC)

// errBoom is what failing closures and generators return.
var errBoom = errors.New("storetest: boom")

// goroutines is how many goroutines the concurrency tests run.
const goroutines = 50

// suite carries the engine under test.
type suite struct {
	open func(t *testing.T, now func() time.Time) store.Store
	// leases is set for an engine that deletes expired records itself,
	// in real time (etcd leases), rather than in Sweep.
	leases bool
	// replica, when set, opens another handle on the data of a store, as
	// another process sharing it would.
	replica func(t *testing.T, st store.Store, now func() time.Time) store.Store
}

// Option describes the engine under test.
type Option func(*suite)

// ExpiresByLease declares an engine that deletes expired records by itself
// in real time (etcd leases) and whose Sweep has nothing to do: the suite
// then checks that Sweep deletes nothing and that a record with a short
// lifetime disappears without anyone moving the clock.
func ExpiresByLease() Option { return func(s *suite) { s.leases = true } }

// Replicas declares an engine that several processes can share, and how to
// open another handle on the data of st (the store returned by open, or
// on its clock now). The concurrency tests then spread their
// goroutines over st and two more handles, so that writers conflict across
// processes rather than queue inside one. The suite closes the handles.
func Replicas(open func(t *testing.T, st store.Store, now func() time.Time) store.Store) Option {
	return func(s *suite) { s.replica = open }
}

// newStore opens a fresh store on a fresh clock and closes it when the test
// ends.
func (s *suite) newStore(t *testing.T) (store.Store, *clock) {
	t.Helper()
	c := &clock{now: start}
	st := s.open(t, c.Now)
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st, c
}

// handles returns st and, for an engine with replicas, two more handles on
// its data: the concurrency tests give goroutine i handles[i%len].
func (s *suite) handles(t *testing.T, st store.Store, clk *clock) []store.Store {
	t.Helper()
	hs := []store.Store{st}
	if s.replica == nil {
		return hs
	}
	for range 2 {
		r := s.replica(t, st, clk.Now)
		t.Cleanup(func() {
			if err := r.Close(); err != nil {
				t.Errorf("Close of a replica: %v", err)
			}
		})
		hs = append(hs, r)
	}
	return hs
}

// clock is a clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// call is one store method invoked with fixed, valid arguments.
type call struct {
	name string
	// seed marks the calls that create the records the others read.
	seed bool
	do   func(ctx context.Context, st store.Store) error
}

// everyCall returns one call of every store.Store method except Close.
func everyCall() []call {
	exp := start.Add(time.Hour)
	return []call{
		{"UpdateKeys", true, func(ctx context.Context, st store.Store) error {
			return st.UpdateKeys(ctx, func(k store.Keys) (store.Keys, error) { return k, nil })
		}},
		{"GetKeys", false, func(ctx context.Context, st store.Store) error {
			_, err := st.GetKeys(ctx)
			return err
		}},
		{"GetOrCreateSecret", false, func(ctx context.Context, st store.Store) error {
			_, err := st.GetOrCreateSecret(ctx, "cookie", func() ([]byte, error) { return []byte("secret"), nil })
			return err
		}},
		{"CreateSession", true, func(ctx context.Context, st store.Store) error {
			return st.CreateSession(ctx, store.Session{ID: "s1", Expires: exp})
		}},
		{"GetSession", false, func(ctx context.Context, st store.Store) error {
			_, err := st.GetSession(ctx, "s1")
			return err
		}},
		{"UpdateSession", false, func(ctx context.Context, st store.Store) error {
			return st.UpdateSession(ctx, "s1", func(s store.Session) (store.Session, error) { return s, nil })
		}},
		{"DeleteSession", false, func(ctx context.Context, st store.Store) error {
			return st.DeleteSession(ctx, "s1")
		}},
		{"CreateAuthCode", true, func(ctx context.Context, st store.Store) error {
			return st.CreateAuthCode(ctx, store.AuthCode{ID: "c1", Expires: exp})
		}},
		{"UpdateAuthCode", false, func(ctx context.Context, st store.Store) error {
			return st.UpdateAuthCode(ctx, "c1", func(c store.AuthCode) (store.AuthCode, error) { return c, nil })
		}},
		{"CreateDeviceCode", true, func(ctx context.Context, st store.Store) error {
			return st.CreateDeviceCode(ctx, store.DeviceCode{ID: "d1", UserCode: "BCDFGHJK", Expires: exp})
		}},
		{"GetDeviceCodeByUserCode", false, func(ctx context.Context, st store.Store) error {
			_, err := st.GetDeviceCodeByUserCode(ctx, "BCDFGHJK")
			return err
		}},
		{"UpdateDeviceCode", false, func(ctx context.Context, st store.Store) error {
			return st.UpdateDeviceCode(ctx, "d1", func(c store.DeviceCode) (store.DeviceCode, error) { return c, nil })
		}},
		{"CreateRefreshFamily", true, func(ctx context.Context, st store.Store) error {
			return st.CreateRefreshFamily(ctx, store.RefreshFamily{ID: "f1", Expires: exp})
		}},
		{"GetRefreshFamily", false, func(ctx context.Context, st store.Store) error {
			_, err := st.GetRefreshFamily(ctx, "f1")
			return err
		}},
		{"UpdateRefreshFamily", false, func(ctx context.Context, st store.Store) error {
			return st.UpdateRefreshFamily(ctx, "f1", func(f store.RefreshFamily) (store.RefreshFamily, error) { return f, nil })
		}},
		{"DeleteRefreshFamily", false, func(ctx context.Context, st store.Store) error {
			return st.DeleteRefreshFamily(ctx, "f1")
		}},
		{"AddToCounter", true, func(ctx context.Context, st store.Store) error {
			_, _, err := st.AddToCounter(ctx, "n1", 1, 10, exp)
			return err
		}},
		{"Sweep", false, func(ctx context.Context, st store.Store) error {
			_, err := st.Sweep(ctx, start)
			return err
		}},
	}
}

// testCanceledContext checks that every method gives up on a canceled
// context with an error that matches context.Canceled.
func (s *suite) testCanceledContext(t *testing.T) {
	st, _ := s.newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, c := range everyCall() {
		t.Run(c.name, func(t *testing.T) {
			if err := c.do(ctx, st); !errors.Is(err, context.Canceled) {
				t.Errorf("%s on a canceled context = %v, want an error matching context.Canceled", c.name, err)
			}
		})
	}
}

// testClose checks that every method fails, without panicking, once the
// store is closed.
func (s *suite) testClose(t *testing.T) {
	c := &clock{now: start}
	st := s.open(t, c.Now)
	ctx := t.Context()
	// Put one record of each kind in place, so that a call that ignored
	// Close would succeed rather than fail with ErrNotFound.
	for _, c := range everyCall() {
		if !c.seed {
			continue
		}
		if err := c.do(ctx, st); err != nil {
			t.Fatalf("%s before Close: %v", c.name, err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, c := range everyCall() {
		t.Run(c.name, func(t *testing.T) {
			if err := c.do(ctx, st); err == nil {
				t.Errorf("%s after Close succeeded, want an error", c.name)
			}
		})
	}
}

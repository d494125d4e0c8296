package bolt_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/bolt"
)

// totalDeleted sums the "deleted" attribute of the sweeper's reports.
func (r *recorder) totalDeleted() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, rec := range r.records {
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "deleted" {
				n += a.Value.Int64()
			}
			return true
		})
	}
	return n
}

func TestRunSweeper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		rec := &recorder{}
		// Inside the bubble time.Now is the bubble's fake clock.
		s := open(t, filepath.Join(t.TempDir(), "ghbroker.db"), bolt.Options{Logger: slog.New(rec)})
		defer mustClose(t, s)
		start := time.Now()
		for id, ttl := range map[string]time.Duration{"short": 30 * time.Minute, "long": 90 * time.Minute} {
			if err := s.CreateSession(ctx, store.Session{ID: id, Expires: start.Add(ttl)}); err != nil {
				t.Fatalf("CreateSession(%s): %v", id, err)
			}
		}

		sweepCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.RunSweeper(sweepCtx, time.Minute)
		}()

		// step advances the fake clock by d, lets the sweeper run, and
		// checks what it has deleted so far.
		step := func(d time.Duration, wantDeleted int64) {
			t.Helper()
			time.Sleep(d)
			synctest.Wait()
			if got := rec.totalDeleted(); got != wantDeleted {
				t.Errorf("at +%v: sweeper deleted %d records, want %d", time.Since(start), got, wantDeleted)
			}
		}
		step(30*time.Minute, 0) // "short" expires at +30m: not before now
		if _, err := s.GetSession(ctx, "short"); err != nil {
			t.Errorf("GetSession(short) at +30m: %v", err)
		}
		step(time.Minute, 1)
		step(59*time.Minute, 1)
		step(time.Minute, 2)
		if n, err := s.Sweep(ctx, start.Add(365*24*time.Hour)); err != nil || n != 0 {
			t.Errorf("Sweep after the sweeper = %d, %v; want 0, nil", n, err)
		}
		if n := rec.count(slog.LevelError); n != 0 {
			t.Errorf("sweeper logged %d errors", n)
		}

		stop()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Error("RunSweeper still running after its context was canceled")
		}
	})
}

// TestSweepUndecodable checks that Sweep keeps, and warns about, a record
// it cannot decode, and that reading it fails without a panic.
func TestSweepUndecodable(t *testing.T) {
	path := validStore(t)
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("sessions")).Put([]byte("junk"), []byte("not json"))
	})
	rec := &recorder{}
	s := open(t, path, bolt.Options{Logger: slog.New(rec)})
	defer mustClose(t, s)
	n, err := s.Sweep(t.Context(), time.Now().Add(365*24*time.Hour))
	if err != nil || n != 1 {
		t.Errorf("Sweep = %d, %v; want 1 (the valid session), nil", n, err)
	}
	if got := rec.count(slog.LevelWarn); got != 1 {
		t.Errorf("Sweep logged %d warnings, want 1", got)
	}
	if _, err := s.GetSession(t.Context(), "junk"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession(junk) = %v, want a decoding error", err)
	}
}

// TestCountersInOlderFile: a file written before the counters bucket
// existed gets it at Open, and its counters are swept like any record.
func TestCountersInOlderFile(t *testing.T) {
	path := validStore(t)
	rawUpdate(t, path, func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("counters")) })
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := open(t, path, bolt.Options{Now: func() time.Time { return now }})
	defer mustClose(t, s)
	if n, ok, err := s.AddToCounter(t.Context(), "w", 1, 5, now.Add(time.Minute)); err != nil || n != 1 || !ok {
		t.Fatalf("AddToCounter in an older file = %d, %v, %v; want 1, true, nil", n, ok, err)
	}
	if n, err := s.Sweep(t.Context(), now.Add(time.Minute+time.Nanosecond)); err != nil || n != 1 {
		t.Errorf("Sweep = %d, %v; want the counter, nil", n, err)
	}
}

package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ghbroker/ghbroker/revocation"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/memory"
)

// downStore refuses every revocation while down is set.
type downStore struct {
	*memory.Store
	down atomic.Bool
}

func (d *downStore) AddRevocation(ctx context.Context, r store.Revocation) error {
	if d.down.Load() {
		return store.ErrUnavailable
	}
	return d.Store.AddRevocation(ctx, r)
}

// TestRevocationsTheStoreRefused: a revocation made while the store is
// down is enforced at once and stored once the store is back, so that the
// other replicas learn it; one that expired meanwhile is dropped.
func TestRevocationsTheStoreRefused(t *testing.T) {
	st := &downStore{Store: memory.New(memory.Options{})}
	r, err := newRevocations(t.Context(), prometheus.NewRegistry(), st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	st.down.Store(true)
	now := time.Now()
	if _, err := r.Add(revocation.Entry{Subject: "1001", Before: now.UnixMilli(), Expires: now.Add(time.Hour).UnixMilli(), Source: "operator"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(revocation.Entry{Session: "old", Expires: now.Add(-time.Second).UnixMilli(), Source: "logout"}); err != nil {
		t.Fatal(err)
	}
	if !r.Revoked("1001", "", now.UnixMilli()-1) {
		t.Fatal("not enforced here while the store is down")
	}
	r.retryUnstored(t.Context())
	if n := len(r.unstored); n != 2 {
		t.Fatalf("%d entries wait for the store while it is down, want 2", n)
	}

	st.down.Store(false)
	r.retryUnstored(t.Context())
	if n := len(r.unstored); n != 0 {
		t.Errorf("%d entries still wait once the store is back", n)
	}
	stored, err := st.Revocations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].Subject != "1001" {
		t.Errorf("the store holds %+v, want the live subject revocation only", stored)
	}
	// Another replica starting now learns it from the store.
	other, err := newRevocations(t.Context(), prometheus.NewRegistry(), st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if !other.Revoked("1001", "", now.UnixMilli()-1) {
		t.Error("another replica does not learn the revocation made while the store was down")
	}
}

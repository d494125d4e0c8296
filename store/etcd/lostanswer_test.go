package etcd

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/etcd/etcdtest"
)

// lateKV loses the answer of the first transaction it is armed for and
// commits that transaction only just before the next one: a write whose
// reply never arrived, applied late.
type lateKV struct {
	clientv3.KV
	mu    sync.Mutex
	armed bool
	late  clientv3.Txn // the transaction to commit before the next
}

func (k *lateKV) Txn(ctx context.Context) clientv3.Txn {
	return &lateTxn{Txn: k.KV.Txn(context.WithoutCancel(ctx)), kv: k}
}

type lateTxn struct {
	clientv3.Txn
	kv *lateKV
}

func (t *lateTxn) If(cs ...clientv3.Cmp) clientv3.Txn   { t.Txn = t.Txn.If(cs...); return t }
func (t *lateTxn) Then(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Then(ops...); return t }
func (t *lateTxn) Else(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Else(ops...); return t }

func (t *lateTxn) Commit() (*clientv3.TxnResponse, error) {
	t.kv.mu.Lock()
	defer t.kv.mu.Unlock()
	if t.kv.armed {
		t.kv.armed, t.kv.late = false, t.Txn
		return nil, errAttempt // the answer is lost; nothing is written yet
	}
	if late := t.kv.late; late != nil {
		t.kv.late = nil
		if _, err := late.Commit(); err != nil {
			return nil, err
		}
	}
	return t.Txn.Commit()
}

// TestUpdateLostAnswerCommittedLate: an update whose answer was lost while
// the record still stood where it was is sent again as it was, not
// recomputed, so that its closure runs once even when the first sending
// commits late (a refresh rotation run twice takes its own new token for
// a reused one and revokes the family).
func TestUpdateLostAnswerCommittedLate(t *testing.T) {
	srv := etcdtest.Start(t)
	s, err := Open(t.Context(), Options{Endpoints: srv.Endpoints(), Prefix: srv.Prefix(), MonitorEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := store.RefreshFamily{ID: "f1", ClientID: "grafana", SessionID: "s1", CurrentHash: "gen-0", Expires: time.Now().Add(time.Hour)}
	if err := s.CreateRefreshFamily(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	kv := &lateKV{KV: s.cli.KV, armed: true}
	s.cli.KV = kv
	calls := 0
	err = s.UpdateRefreshFamily(t.Context(), "f1", func(f store.RefreshFamily) (store.RefreshFamily, error) {
		calls++
		f.CurrentHash += "+1"
		return f, nil
	})
	if err != nil {
		t.Fatalf("UpdateRefreshFamily: %v", err)
	}
	if kv.armed || kv.late != nil {
		t.Fatal("the fault was not exercised")
	}
	got, err := s.GetRefreshFamily(t.Context(), "f1")
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 || got.CurrentHash != "gen-0+1" {
		t.Errorf("the closure ran %d times and left %q, want once and %q", calls, got.CurrentHash, "gen-0+1")
	}
}

// TestCounterLostAnswerCommittedLate: an add whose answer was lost and
// which commits late is counted once.
func TestCounterLostAnswerCommittedLate(t *testing.T) {
	srv := etcdtest.Start(t)
	s, err := Open(t.Context(), Options{Endpoints: srv.Endpoints(), Prefix: srv.Prefix(), MonitorEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	exp := time.Now().Add(time.Minute)
	if _, _, err := s.AddToCounter(t.Context(), "c", 1, 10, exp); err != nil {
		t.Fatal(err)
	}
	kv := &lateKV{KV: s.cli.KV, armed: true}
	s.cli.KV = kv
	n, added, err := s.AddToCounter(t.Context(), "c", 1, 10, exp)
	if err != nil || !added || n != 2 {
		t.Fatalf("AddToCounter = %d, %v, %v; want 2, true, nil", n, added, err)
	}
	if kv.armed || kv.late != nil {
		t.Fatal("the fault was not exercised")
	}
	if n, _, err := s.AddToCounter(t.Context(), "c", 0, 10, exp); err != nil || n != 2 {
		t.Errorf("the counter holds %d (%v), want 2: the late add counted twice", n, err)
	}
}

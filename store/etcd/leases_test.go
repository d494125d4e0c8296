package etcd_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/etcd"
)

func TestBucketWidth(t *testing.T) {
	for _, c := range []struct {
		life, want time.Duration
	}{
		{-time.Second, time.Second},
		{0, time.Second},
		{time.Second, time.Second},
		{31 * time.Second, time.Second},
		{32 * time.Second, 2 * time.Second},
		{time.Minute, 2 * time.Second}, // an authorization code
		{10 * time.Minute, 30 * time.Second},
		{time.Hour, 2 * time.Minute},
		{12 * time.Hour, 5 * time.Minute}, // a session
		{30 * 24 * time.Hour, 5 * time.Minute},
	} {
		if got := etcd.BucketWidth(c.life); got != c.want {
			t.Errorf("BucketWidth(%s) = %s, want %s", c.life, got, c.want)
		}
	}
}

// leaseOf returns the lease of key, or fails the test when key is absent.
func leaseOf(t *testing.T, c *clientv3.Client, key string) clientv3.LeaseID {
	t.Helper()
	resp, err := c.Get(t.Context(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw get %s: %v %v", key, resp, err)
	}
	return clientv3.LeaseID(resp.Kvs[0].Lease)
}

// alive reports whether lease id is still granted.
func alive(t *testing.T, c *clientv3.Client, id clientv3.LeaseID) bool {
	t.Helper()
	resp, err := c.TimeToLive(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return resp.TTL > 0
}

// counter returns the value of the counter name in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

const grants = "ghbroker_store_lease_grants_total"

// session creates session id expiring at expires.
func session(t *testing.T, st *etcd.Store, id string, expires time.Time) {
	t.Helper()
	if err := st.CreateSession(t.Context(), store.Session{ID: id, Expires: expires}); err != nil {
		t.Fatalf("CreateSession %s: %v", id, err)
	}
}

// TestLeases checks that records expiring in one bucket share a lease that
// ends after the last of them expires and at most a bucket width (plus
// rounding) after the first; that an update keeping the expiry keeps the
// lease; that one moving the expiry moves the record to another lease
// without ending the old one; and that a delete leaves the shared lease to
// the others.
func TestLeases(t *testing.T) {
	c := rawClient(t)
	now := time.Now()
	reg := prometheus.NewRegistry()
	st := open(t, etcd.Options{Now: func() time.Time { return now }, Registerer: reg})
	defer st.Close()
	key := func(id string) string { return st.Prefix() + "sessions/" + id }
	// In the middle of a 2-minute bucket (the width for about an hour).
	exp := now.Add(time.Hour).Truncate(2 * time.Minute).Add(time.Minute)
	session(t, st, "s1", exp)
	session(t, st, "s2", exp.Add(30*time.Second))
	session(t, st, "s3", exp.Add(-30*time.Second))
	shared := leaseOf(t, c, key("s1"))
	if shared == 0 || leaseOf(t, c, key("s2")) != shared || leaseOf(t, c, key("s3")) != shared {
		t.Fatal("three records of one bucket are not on one lease")
	}
	if n := counter(t, reg, grants); n != 1 {
		t.Errorf("%v leases granted for three records of one bucket, want 1", n)
	}
	ttl, err := c.TimeToLive(t.Context(), shared)
	if err != nil {
		t.Fatal(err)
	}
	latest, earliest := exp.Add(30*time.Second).Sub(now), exp.Add(-30*time.Second).Sub(now)
	if got := time.Duration(ttl.GrantedTTL) * time.Second; got <= latest || got > earliest+2*time.Minute+2*time.Second {
		t.Errorf("the shared lease's TTL is %s, want more than the last record's %s and at most the first's %s plus a bucket (2m) and 2s", got, latest, earliest)
	}

	// An update that keeps the expiry keeps the lease.
	if err := st.UpdateSession(t.Context(), "s1", func(s store.Session) (store.Session, error) { s.Login = "x"; return s, nil }); err != nil {
		t.Fatal(err)
	}
	if got := leaseOf(t, c, key("s1")); got != shared {
		t.Errorf("an update that kept the expiry moved the record to lease %d", got)
	}
	// One that extends it moves to another lease; the old one stays for
	// the others.
	if err := st.UpdateSession(t.Context(), "s1", func(s store.Session) (store.Session, error) {
		s.Expires = now.Add(2 * time.Hour)
		return s, nil
	}); err != nil {
		t.Fatal(err)
	}
	moved := leaseOf(t, c, key("s1"))
	if moved == shared || moved == 0 {
		t.Errorf("after extending: lease %d, want another than %d", moved, shared)
	}
	if ttl, err := c.TimeToLive(t.Context(), moved); err != nil || time.Duration(ttl.GrantedTTL)*time.Second <= 2*time.Hour {
		t.Errorf("the new lease does not outlive the new expiry: %v %v", ttl, err)
	}
	if !alive(t, c, shared) {
		t.Error("moving one record off the shared lease ended it")
	}
	// A delete leaves the shared lease, and the other records on it.
	if err := st.DeleteSession(t.Context(), "s2"); err != nil {
		t.Fatal(err)
	}
	if !alive(t, c, shared) || leaseOf(t, c, key("s3")) != shared {
		t.Error("deleting one record ended the lease it shared")
	}
	if _, err := st.GetSession(t.Context(), "s3"); err != nil {
		t.Errorf("GetSession s3 after deleting s2: %v", err)
	}
}

// TestLeasesFew: a thousand records with similar expiries, created
// concurrently, share a few leases.
func TestLeasesFew(t *testing.T) {
	c := rawClient(t)
	reg := prometheus.NewRegistry()
	st := open(t, etcd.Options{Registerer: reg})
	defer st.Close()
	const records, workers = 1000, 8
	exp := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < records; i += workers {
				session(t, st, fmt.Sprint("s", i), exp.Add(time.Duration(i)*time.Millisecond))
			}
		})
	}
	wg.Wait()
	resp, err := c.Get(t.Context(), st.Prefix()+"sessions/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != records {
		t.Fatalf("raw get: %d keys, %v", len(resp.Kvs), err)
	}
	leases := map[int64]int{}
	for _, kv := range resp.Kvs {
		leases[kv.Lease]++
	}
	if len(leases) > 3 || leases[0] > 0 {
		t.Errorf("%d records with expiries within 1s are on %d leases (%v), want at most 3", records, len(leases), leases)
	}
	if n := counter(t, reg, grants); n > 3 {
		t.Errorf("%v leases granted for %d records, want at most 3", n, records)
	}
}

// TestOneRaftEntryPerCreate: creating a record is one raft entry (it was
// two: a lease grant, then the put), as etcd's raft index counts.
func TestOneRaftEntryPerCreate(t *testing.T) {
	c := rawClient(t)
	st := open(t, etcd.Options{})
	defer st.Close()
	index := func() uint64 {
		t.Helper()
		resp, err := c.Status(t.Context(), server.Endpoints()[0])
		if err != nil {
			t.Fatal(err)
		}
		return resp.RaftIndex
	}
	exp := time.Now().Add(time.Hour)
	session(t, st, "first", exp) // grants the bucket's lease
	const n = 100
	before := index()
	for i := range n {
		session(t, st, fmt.Sprint("s", i), exp)
	}
	// A little slack: leases of earlier tests may expire meanwhile, each
	// a raft entry too.
	if got := index() - before; got > n+10 {
		t.Errorf("%d creates wrote %d raft entries, want about %d", n, got, n)
	}
}

// TestLeaseGrantedOnce: of many concurrent creates in one bucket, one
// grants the lease and all use it.
func TestLeaseGrantedOnce(t *testing.T) {
	c := rawClient(t)
	reg := prometheus.NewRegistry()
	st := open(t, etcd.Options{Registerer: reg})
	defer st.Close()
	exp := time.Now().Add(time.Hour)
	const n = 50
	var ready, wg sync.WaitGroup
	ready.Add(n)
	for i := range n {
		wg.Go(func() {
			ready.Done()
			ready.Wait()
			session(t, st, fmt.Sprint("s", i), exp)
		})
	}
	wg.Wait()
	if got := counter(t, reg, grants); got != 1 {
		t.Errorf("%d concurrent creates in one bucket granted %v leases, want 1", n, got)
	}
	first := leaseOf(t, c, st.Prefix()+"sessions/s0")
	for i := range n {
		if got := leaseOf(t, c, st.Prefix()+fmt.Sprint("sessions/s", i)); got != first {
			t.Fatalf("s%d is on lease %d, s0 on %d", i, got, first)
		}
	}
}

// TestLeaseCap: a pooled lease holds at most its cap of keys; the next
// key starts a fresh lease.
func TestLeaseCap(t *testing.T) {
	c := rawClient(t)
	reg := prometheus.NewRegistry()
	st := open(t, etcd.Options{Registerer: reg})
	defer st.Close()
	etcd.SetPoolLimits(st, 10, 1024)
	exp := time.Now().Add(time.Hour)
	for i := range 25 {
		session(t, st, fmt.Sprint("s", i), exp)
	}
	if got := counter(t, reg, grants); got != 3 {
		t.Errorf("25 records at 10 a lease granted %v leases, want 3", got)
	}
	resp, err := c.Get(t.Context(), st.Prefix()+"sessions/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	leases := map[int64]int{}
	for _, kv := range resp.Kvs {
		leases[kv.Lease]++
	}
	for id, n := range leases {
		if n > 10 || id == 0 {
			t.Errorf("lease %d holds %d keys, want at most 10", id, n)
		}
	}
	// A device code and its user-code entry go on one lease, counting
	// two keys.
	etcd.SetPoolLimits(st, 3, 1024)
	for i := range 3 {
		d := store.DeviceCode{ID: fmt.Sprint("d", i), UserCode: fmt.Sprint("U", i), Expires: exp.Add(time.Minute)}
		if err := st.CreateDeviceCode(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		if leaseOf(t, c, st.Prefix()+"devices/"+d.ID) != leaseOf(t, c, st.Prefix()+"user_codes/"+d.UserCode) {
			t.Errorf("device code %s and its user code are on different leases", d.ID)
		}
	}
	if got := counter(t, reg, grants); got != 6 {
		t.Errorf("3 device codes at 3 keys a lease granted %v more leases, want 3", got-3)
	}
}

// TestLeaseRevoked: a pooled lease someone revoked (which deletes its
// records) is replaced transparently, by a create, an update moving the
// expiry, a device code and an import.
func TestLeaseRevoked(t *testing.T) {
	c := rawClient(t)
	reg := prometheus.NewRegistry()
	st := open(t, etcd.Options{Registerer: reg})
	defer st.Close()
	key := func(kind, id string) string { return st.Prefix() + kind + "/" + id }
	revoke := func(id clientv3.LeaseID) {
		t.Helper()
		if _, err := c.Revoke(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	exp := time.Now().Add(time.Hour)

	session(t, st, "a", exp)
	gone := leaseOf(t, c, key("sessions", "a"))
	revoke(gone)
	session(t, st, "b", exp)
	if got := leaseOf(t, c, key("sessions", "b")); got == gone || !alive(t, c, got) {
		t.Errorf("the create after the revocation is on lease %d (the revoked one: %d)", got, gone)
	}

	session(t, st, "x", exp)
	session(t, st, "y", exp.Add(time.Hour))
	gone = leaseOf(t, c, key("sessions", "y"))
	revoke(gone)
	err := st.UpdateSession(t.Context(), "x", func(s store.Session) (store.Session, error) {
		s.Expires = exp.Add(time.Hour)
		return s, nil
	})
	if err != nil {
		t.Fatalf("UpdateSession onto a revoked bucket lease: %v", err)
	}
	if got := leaseOf(t, c, key("sessions", "x")); got == gone || !alive(t, c, got) {
		t.Errorf("the update is on lease %d (the revoked one: %d)", got, gone)
	}

	dexp := exp.Add(2 * time.Hour)
	if err := st.CreateDeviceCode(t.Context(), store.DeviceCode{ID: "d1", UserCode: "U1", Expires: dexp}); err != nil {
		t.Fatal(err)
	}
	revoke(leaseOf(t, c, key("devices", "d1")))
	if err := st.CreateDeviceCode(t.Context(), store.DeviceCode{ID: "d2", UserCode: "U2", Expires: dexp}); err != nil {
		t.Fatalf("CreateDeviceCode after its bucket's lease was revoked: %v", err)
	}
	if d, err := st.GetDeviceCodeByUserCode(t.Context(), "U2"); err != nil || d.ID != "d2" {
		t.Errorf("GetDeviceCodeByUserCode = %+v, %v", d, err)
	}

	iexp := exp.Add(3 * time.Hour)
	session(t, st, "i1", iexp)
	revoke(leaseOf(t, c, key("sessions", "i1")))
	if err := st.Import(t.Context(), store.Snapshot{Sessions: []store.Session{{ID: "i2", Expires: iexp}}}); err != nil {
		t.Fatalf("Import after its bucket's lease was revoked: %v", err)
	}
	if _, err := st.GetSession(t.Context(), "i2"); err != nil {
		t.Errorf("GetSession of the imported session: %v", err)
	}
	if got := counter(t, reg, grants); got != 8 {
		t.Errorf("%v leases granted, want 8 (4 buckets, each lease replaced once)", got)
	}
}

// TestLeaseExpiry: etcd deletes a record with a 1 s lifetime within about
// its bucket's width (1 s) and two seconds of rounding after its expiry,
// and not before.
func TestLeaseExpiry(t *testing.T) {
	c := rawClient(t)
	st := open(t, etcd.Options{})
	defer st.Close()
	exp := time.Now().Add(time.Second)
	session(t, st, "s", exp)
	for {
		resp, err := c.Get(t.Context(), st.Prefix()+"sessions/s")
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			break
		}
		if late := time.Since(exp); late > 5*time.Second {
			t.Fatalf("still there %s after its expiry", late)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if early := time.Until(exp); early > 0 {
		t.Fatalf("etcd deleted the record %s before its expiry", early)
	}
	t.Logf("deleted %s after its expiry", time.Since(exp).Round(10*time.Millisecond))
}

// TestLeasePoolBounded: the pool forgets leases whose bucket has ended,
// and holds at most its limit.
func TestLeasePoolBounded(t *testing.T) {
	now := time.Now()
	st := open(t, etcd.Options{Now: func() time.Time { return now }})
	defer st.Close()
	etcd.SetPoolLimits(st, 1000, 4)
	for i := range 10 {
		// Ten records ten seconds away, in ten 1-second buckets.
		session(t, st, fmt.Sprint("s", i), now.Add(10*time.Second+time.Duration(i)*time.Second))
	}
	if n := etcd.PooledLeases(st); n > 4 {
		t.Errorf("the pool holds %d leases, want at most 4", n)
	}
	now = now.Add(time.Minute)
	session(t, st, "later", now.Add(10*time.Second))
	if n := etcd.PooledLeases(st); n != 1 {
		t.Errorf("once every earlier bucket ended, the pool holds %d leases, want 1", n)
	}
}

package etcd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/etcd"
	"github.com/ghbroker/ghbroker/store/etcd/etcdtest"
	"github.com/ghbroker/ghbroker/store/storetest"
)

// server is the one embedded etcd every test of the package shares, each
// store under a prefix of its own.
var server *etcdtest.Server

func TestMain(m *testing.M) {
	s, err := etcdtest.New("")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

// open opens a store on a fresh prefix of the shared server.
func open(t *testing.T, opts etcd.Options) *etcd.Store {
	t.Helper()
	if opts.Endpoints == nil {
		opts.Endpoints = server.Endpoints()
	}
	if opts.Prefix == "" {
		opts.Prefix = server.Prefix()
	}
	if opts.MonitorEvery == 0 {
		opts.MonitorEvery = -1
	}
	s, err := etcd.Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// conformanceTimeout bounds each store call in the conformance suite. Its
// races put 50 to 100 writers on one key, which the store serialises (an
// in-process lock per key, compare-and-swap across handles): on a loaded
// two-core CI machine the last writer can wait longer than the product's
// 3 s default, which bounds a request's latency, not what the races test
// (no lost update, one winner).
const conformanceTimeout = 30 * time.Second

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return open(t, etcd.Options{Now: now, RequestTimeout: conformanceTimeout})
	}, storetest.ExpiresByLease(), storetest.Replicas(func(t *testing.T, st store.Store, now func() time.Time) store.Store {
		return open(t, etcd.Options{Prefix: st.(*etcd.Store).Prefix(), Now: now, RequestTimeout: conformanceTimeout})
	}))
}

// rawClient returns a plain etcd client on the shared server.
func rawClient(t *testing.T) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: server.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOpenUnreachable(t *testing.T) {
	ports, err := etcdtest.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	eps := []string{fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	began := time.Now()
	_, err = etcd.Open(t.Context(), etcd.Options{Endpoints: eps, DialTimeout: 500 * time.Millisecond, MonitorEvery: -1})
	var ue *etcd.UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("Open on closed ports = %v, want an *UnreachableError", err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Open took %s to give up, want about the dial timeout (500ms)", took)
	}
	for _, ep := range eps {
		if !strings.Contains(err.Error(), ep) {
			t.Errorf("error %q does not name endpoint %s", err, ep)
		}
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("error %v does not match store.ErrUnavailable", err)
	}
}

func TestOpenRefusesPrefix(t *testing.T) {
	c := rawClient(t)
	t.Run("NewerSchema", func(t *testing.T) {
		prefix := server.Prefix()
		if _, err := c.Put(t.Context(), prefix+"schema", fmt.Sprintf(`{"version":%d}`, etcd.SchemaVersion+1)); err != nil {
			t.Fatal(err)
		}
		_, err := etcd.Open(t.Context(), etcd.Options{Endpoints: server.Endpoints(), Prefix: prefix, MonitorEvery: -1})
		var ve *etcd.SchemaVersionError
		if !errors.As(err, &ve) || ve.Version != etcd.SchemaVersion+1 {
			t.Fatalf("Open on a newer schema = %v, want a *SchemaVersionError", err)
		}
		t.Log(err)
	})
	t.Run("ForeignKeyInEmptyPrefix", func(t *testing.T) {
		prefix := server.Prefix()
		if _, err := c.Put(t.Context(), prefix+"registry/pods/x", "{}"); err != nil {
			t.Fatal(err)
		}
		_, err := etcd.Open(t.Context(), etcd.Options{Endpoints: server.Endpoints(), Prefix: prefix, MonitorEvery: -1})
		var fe *etcd.ForeignKeyError
		if !errors.As(err, &fe) || fe.Key != prefix+"registry/pods/x" {
			t.Fatalf("Open on a prefix holding another program's key = %v, want a *ForeignKeyError", err)
		}
		t.Log(err)
	})
	t.Run("ForeignKeyBesideOurs", func(t *testing.T) {
		st := open(t, etcd.Options{})
		st.Close()
		if _, err := c.Put(t.Context(), st.Prefix()+"zzz", "{}"); err != nil {
			t.Fatal(err)
		}
		_, err := etcd.Open(t.Context(), etcd.Options{Endpoints: server.Endpoints(), Prefix: st.Prefix(), MonitorEvery: -1})
		var fe *etcd.ForeignKeyError
		if !errors.As(err, &fe) {
			t.Fatalf("Open on our prefix with a foreign key = %v, want a *ForeignKeyError", err)
		}
	})
	t.Run("LaterKindListedInTheSchema", func(t *testing.T) {
		// A newer ghbroker of the same schema version wrote a kind this
		// one does not know: listed in the schema key, it is ghbroker's;
		// unlisted, it is another program's.
		st := open(t, etcd.Options{})
		st.Close()
		if _, err := c.Put(t.Context(), st.Prefix()+"future/x", "{}"); err != nil {
			t.Fatal(err)
		}
		if _, err := etcd.Open(t.Context(), etcd.Options{Endpoints: server.Endpoints(), Prefix: st.Prefix(), MonitorEvery: -1}); !errors.As(err, new(*etcd.ForeignKeyError)) {
			t.Fatalf("Open beside an unlisted kind = %v, want a *ForeignKeyError", err)
		}
		resp, err := c.Get(t.Context(), st.Prefix()+"schema")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("schema key: %v", err)
		}
		var sch struct {
			Version int      `json:"version"`
			Kinds   []string `json:"kinds"`
		}
		if err := json.Unmarshal(resp.Kvs[0].Value, &sch); err != nil || !slices.Contains(sch.Kinds, "sessions") {
			t.Fatalf("the schema key %s lists no kinds (%v)", resp.Kvs[0].Value, err)
		}
		sch.Kinds = append(sch.Kinds, "future")
		data, _ := json.Marshal(sch)
		if _, err := c.Put(t.Context(), st.Prefix()+"schema", string(data)); err != nil {
			t.Fatal(err)
		}
		again := open(t, etcd.Options{Prefix: st.Prefix()})
		again.Close()
	})
	t.Run("OlderSchemaKeyGetsTheKinds", func(t *testing.T) {
		prefix := server.Prefix()
		if _, err := c.Put(t.Context(), prefix+"schema", fmt.Sprintf(`{"version":%d}`, etcd.SchemaVersion)); err != nil {
			t.Fatal(err)
		}
		open(t, etcd.Options{Prefix: prefix}).Close()
		resp, err := c.Get(t.Context(), prefix+"schema")
		if err != nil || len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), `"revocations"`) {
			t.Fatalf("schema key after opening a prefix of an older ghbroker: %v %v", resp, err)
		}
	})
	t.Run("ReopenOurs", func(t *testing.T) {
		st := open(t, etcd.Options{})
		if err := st.CreateSession(t.Context(), store.Session{ID: "s", Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		st.Close()
		st = open(t, etcd.Options{Prefix: st.Prefix()})
		defer st.Close()
		if _, err := st.GetSession(t.Context(), "s"); err != nil {
			t.Fatalf("GetSession after reopening: %v", err)
		}
	})
}

// TestUnavailable stops the server under an open store: every call fails
// with store.ErrUnavailable within about the request timeout.
func TestUnavailable(t *testing.T) {
	srv := etcdtest.Start(t)
	st, err := etcd.Open(t.Context(), etcd.Options{Endpoints: srv.Endpoints(), RequestTimeout: 500 * time.Millisecond, MonitorEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateSession(t.Context(), store.Session{ID: "s", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	for _, c := range []struct {
		name string
		do   func() error
	}{
		{"GetSession", func() error { _, err := st.GetSession(t.Context(), "s"); return err }},
		{"UpdateSession", func() error {
			return st.UpdateSession(t.Context(), "s", func(s store.Session) (store.Session, error) { return s, nil })
		}},
		{"CreateAuthCode", func() error {
			return st.CreateAuthCode(t.Context(), store.AuthCode{ID: "c", Expires: time.Now().Add(time.Minute)})
		}},
		{"GetKeys", func() error { _, err := st.GetKeys(t.Context()); return err }},
	} {
		began := time.Now()
		err := c.do()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with etcd down = %v, want store.ErrUnavailable", c.name, err)
		}
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("%s took %s to fail, want about the request timeout (500ms)", c.name, took)
		}
	}
}

// TestWatchKeys checks that a change of the key set written through one
// handle is reported to another within seconds.
func TestWatchKeys(t *testing.T) {
	a := open(t, etcd.Options{})
	defer a.Close()
	b := open(t, etcd.Options{Prefix: a.Prefix()})
	defer b.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := b.WatchKeys(ctx)
	// The watch may not be established yet: keep writing until it
	// reports.
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		err := a.UpdateKeys(t.Context(), func(k store.Keys) (store.Keys, error) {
			k.Current = &store.SigningKey{KID: fmt.Sprint(i)}
			return k, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
			cancel()
			for range ch { // closed once ctx is done
			}
			return
		case <-deadline:
			t.Fatal("no report of a key-set change within 10s")
		case <-tick.C:
		}
	}
}

// TestBoundedInFlight fills the in-flight budget with calls stuck on a
// dead server: a further call fails within the request timeout instead of
// queueing without bound.
func TestBoundedInFlight(t *testing.T) {
	srv := etcdtest.Start(t)
	st, err := etcd.Open(t.Context(), etcd.Options{Endpoints: srv.Endpoints(), MaxInFlight: 2, RequestTimeout: 500 * time.Millisecond, MonitorEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv.Close()
	errs := make(chan error, 10)
	began := time.Now()
	for range 10 {
		go func() { _, err := st.GetSession(t.Context(), "s"); errs <- err }()
	}
	for range 10 {
		if err := <-errs; !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("GetSession = %v, want store.ErrUnavailable", err)
		}
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("10 calls on a budget of 2 took %s, want about one request timeout", took)
	}
}

// TestPasswordAuth runs the conformance-relevant calls as an etcd user
// whose role may read and write only the prefix (etcd RBAC, as docs/ha.md
// advises); a wrong password fails Open.
func TestPasswordAuth(t *testing.T) {
	srv := etcdtest.Start(t)
	c, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()
	const prefix = "/ghbroker/"
	for _, step := range []func() error{
		func() error { _, err := c.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := c.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := c.UserAdd(ctx, "ghbroker", "s3cret"); return err },
		func() error { _, err := c.RoleAdd(ctx, "ghbroker"); return err },
		func() error {
			_, err := c.RoleGrantPermission(ctx, "ghbroker", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := c.UserGrantRole(ctx, "ghbroker", "ghbroker"); return err },
		func() error { _, err := c.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	st, err := etcd.Open(ctx, etcd.Options{Endpoints: srv.Endpoints(), Username: "ghbroker", Password: "s3cret", MonitorEvery: 50 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatalf("Open as ghbroker: %v", err)
	}
	defer st.Close()
	now := time.Now()
	if err := st.CreateSession(ctx, store.Session{ID: "s", Expires: now.Add(time.Hour)}); err != nil {
		t.Fatalf("CreateSession as ghbroker: %v", err)
	}
	if err := st.UpdateSession(ctx, "s", func(s store.Session) (store.Session, error) { s.Expires = now.Add(2 * time.Hour); return s, nil }); err != nil {
		t.Fatalf("UpdateSession (onto another lease) as ghbroker: %v", err)
	}
	if err := st.DeleteSession(ctx, "s"); err != nil {
		t.Fatalf("DeleteSession as ghbroker: %v", err)
	}
	if _, err := st.GetOrCreateSecret(ctx, "cookie", func() ([]byte, error) { return []byte("x"), nil }); err != nil {
		t.Fatalf("GetOrCreateSecret as ghbroker: %v", err)
	}
	// The monitor's status checks work as this user too.
	deadline := time.Now().Add(5 * time.Second)
	for gauge(t, reg, "ghbroker_store_etcd_endpoint_up") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the endpoint never showed as up to a status check as ghbroker")
		}
		time.Sleep(20 * time.Millisecond)
	}

	_, err = etcd.Open(ctx, etcd.Options{Endpoints: srv.Endpoints(), Username: "ghbroker", Password: "wrong", DialTimeout: time.Second, MonitorEvery: -1})
	if err == nil {
		t.Fatal("Open with a wrong password succeeded")
	}
	t.Log(err)
}

// gauge returns the value of the first series of the gauge name in reg, or
// -1.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestWatchRevocations: a revocation one replica stores reaches another
// replica's watch, whole.
func TestWatchRevocations(t *testing.T) {
	a := open(t, etcd.Options{})
	defer a.Close()
	b := open(t, etcd.Options{Prefix: a.Prefix()})
	defer b.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := b.WatchRevocations(ctx)
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		// The watch may not be established yet: keep adding until one
		// arrives.
		r := store.Revocation{ID: fmt.Sprint("r", i), Subject: "583231", Before: 1_700_000_000_123, Source: "webhook", Expires: time.Now().Add(time.Hour)}
		if err := a.AddRevocation(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-ch:
			if got.ID == "" {
				continue // the watch was (re-)established
			}
			if got.Subject != "583231" || got.Before != 1_700_000_000_123 || got.Source != "webhook" {
				t.Errorf("watched %+v", got)
			}
			cancel()
			for range ch {
			}
			return
		case <-deadline:
			t.Fatal("no revocation reached the other replica within 10s")
		case <-tick.C:
		}
	}
}

package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ghbroker/ghbroker/internal/config"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/bolt"
	"github.com/ghbroker/ghbroker/store/etcd/etcdtest"
)

// fill writes one live record of every kind, and one expired session,
// into the store cfgPath names, and returns what a copy must carry.
func fill(t *testing.T, cfgPath string) store.Snapshot {
	t.Helper()
	en := openFor(t, cfgPath)
	defer en.Close()
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	if _, err := keysInStore(ctx, mustLoad(t, cfgPath), en, false); err != nil {
		t.Fatal(err)
	}
	if _, err := en.GetOrCreateSecret(ctx, "cookie", func() ([]byte, error) { return []byte("cookie-secret"), nil }); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		en.CreateSession(ctx, store.Session{ID: "s1", Subject: "1", Login: "alice", Groups: []string{"acme"}, GitHubToken: []byte{1, 2}, Expires: now.Add(time.Hour)}),
		en.CreateSession(ctx, store.Session{ID: "gone", Expires: now.Add(-time.Minute)}),
		en.CreateRefreshFamily(ctx, store.RefreshFamily{ID: "f1", ClientID: "grafana", SessionID: "s1", CurrentHash: "h", Expires: now.Add(time.Hour)}),
		en.CreateAuthCode(ctx, store.AuthCode{ID: "c1", SessionID: "s1", Request: store.AuthRequest{ClientID: "grafana"}, Expires: now.Add(time.Minute)}),
		en.CreateDeviceCode(ctx, store.DeviceCode{ID: "d1", UserCode: "BCDFGHJK", ClientID: "cli", Status: store.DevicePending, Interval: 5, Deadline: now.Add(10 * time.Minute), Expires: now.Add(20 * time.Minute)}),
		// Without its revocations a copy would let revoked tokens in again.
		en.AddRevocation(ctx, store.Revocation{ID: "r1", Subject: "1", Before: now.UnixMilli(), Source: "operator", Expires: now.Add(time.Hour)}),
		en.AddRevocation(ctx, store.Revocation{ID: "r-gone", Session: "old", Source: "logout", Expires: now.Add(-time.Minute)}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if first, err := en.FirstDelivery(ctx, "delivery-1", now.Add(72*time.Hour)); err != nil || !first {
		t.Fatalf("FirstDelivery: %v, %v", first, err)
	}
	snap, err := en.Store.(store.Exporter).Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Sessions) != 1 || len(snap.Revocations) != 1 || snap.Len() != 8 {
		t.Fatalf("source export: %s", snap.Summary())
	}
	return snap
}

func mustLoad(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// openFor opens the store of a config file.
func openFor(t *testing.T, cfgPath string) *engine {
	t.Helper()
	en, err := openEngine(context.Background(), mustLoad(t, cfgPath).Storage, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return en
}

// exported reads every record of the store a config names.
func exported(t *testing.T, cfgPath string) store.Snapshot {
	t.Helper()
	en := openFor(t, cfgPath)
	defer en.Close()
	snap, err := en.Store.(store.Exporter).Export(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestStoreCopy copies bolt → etcd and back: every live record arrives
// (the key set still signs the same kid), expired ones stay behind, a
// second copy is harmless, a target holding other records is refused
// without --force, and a bolt file held by a server is named.
func TestStoreCopy(t *testing.T) {
	srv := etcdtest.Start(t)
	boltCfg := writeConfig(t, t.TempDir(), freeAddr(t), "")
	etcdCfg := writeEtcdConfig(t, t.TempDir(), freeAddr(t), srv.Endpoints(), srv.Prefix(), "")
	backCfg := writeConfig(t, t.TempDir(), freeAddr(t), "")
	want := fill(t, boltCfg)

	for _, step := range []struct{ name, from, to string }{
		{"bolt to etcd", boltCfg, etcdCfg},
		{"bolt to etcd again", boltCfg, etcdCfg},
		{"etcd to bolt", etcdCfg, backCfg},
	} {
		code, out, errs := runCmd(t, nil, "store", "copy", "--from", step.from, "--to", step.to)
		if code != 0 || !strings.Contains(out, "sessions 1, refresh families 1, authorization codes 1, device codes 1, revocations 1, webhook deliveries 1") {
			t.Fatalf("%s: exit %d, %q %q", step.name, code, out, errs)
		}
		if d := cmp.Diff(want, exported(t, step.to)); d != "" {
			t.Errorf("%s: target differs from the source (-want +got):\n%s", step.name, d)
		}
	}

	// The copy on etcd serves: its device code is found by user code.
	en := openFor(t, etcdCfg)
	if c, err := en.GetDeviceCodeByUserCode(t.Context(), "BCDFGHJK"); err != nil || c.ID != "d1" {
		t.Errorf("device code on etcd after the copy: %v, %v", c.ID, err)
	}
	// A record the source does not have makes the target a conflict.
	if err := en.CreateSession(t.Context(), store.Session{ID: "other", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	en.Close()
	code, _, errs := runCmd(t, nil, "store", "copy", "--from", boltCfg, "--to", etcdCfg)
	if code != exitRuntime || !strings.Contains(errs, "session other differs") || !strings.Contains(errs, "use --force") {
		t.Errorf("copy into a target with other records: exit %d, %q", code, errs)
	}
	if code, out, errs := runCmd(t, nil, "store", "copy", "--from", boltCfg, "--to", etcdCfg, "--force"); code != 0 {
		t.Errorf("copy --force: exit %d, %q %q", code, out, errs)
	}

	// A bolt file held by another opener (a running serve) is refused
	// with a sentence that says so.
	held, err := bolt.Open(filepath.Join(filepath.Dir(boltCfg), "ghbroker.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	code, _, errs = runCmd(t, nil, "store", "copy", "--from", boltCfg, "--to", etcdCfg, "--force")
	if code != exitRuntime || !strings.Contains(errs, "is held by a running ghbroker serve") {
		t.Errorf("copy from a held bolt file: exit %d, %q", code, errs)
	}
	if code, _, errs := runCmd(t, nil, "store", "copy", "--from", boltCfg, "--to", boltCfg); code != exitUsage || !strings.Contains(errs, "same store") {
		t.Errorf("copy onto itself: exit %d, %q", code, errs)
	}
}

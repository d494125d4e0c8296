package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/internal/admin"
	"github.com/ghbroker/ghbroker/internal/config"
)

// startServe runs `ghbroker serve` as a child process (the test binary
// acting as main) and waits until it is ready.
func startServe(t *testing.T, cfgPath, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "GHBROKER_TEST_BE_MAIN=1")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	waitReady(t, "http://"+addr)
	return cmd
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", base)
}

func fetchJWKS(t *testing.T, base string) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(base + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func TestRestartServesSameJWKS(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	cfg := writeConfig(t, dir, addr, "")
	p := startServe(t, cfg, addr)
	before := kids(fetchJWKS(t, "http://"+addr))

	// SIGTERM: drain, close the store, exit 0.
	if err := p.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("serve did not exit cleanly on SIGTERM: %v", err)
	}
	if _, err := os.Stat(admin.SocketPath(filepath.Join(dir, "ghbroker.db"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin socket left behind: %v", err)
	}

	startServe(t, cfg, addr)
	after := kids(fetchJWKS(t, "http://"+addr))
	if !slices.Equal(before, after) {
		t.Errorf("JWKS changed across a restart: %v → %v", before, after)
	}
}

// TestKeysRotateWhileServing: `keys rotate` asks the running server, the
// JWKS then holds the old and the new key, and a token signed before the
// rotation still verifies with a relying-party library.
func TestKeysRotateWhileServing(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	cfgPath := writeConfig(t, dir, addr, "")
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, slog.New(slog.DiscardHandler), appOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	defer func() { cancel(); <-done }()
	<-a.ready
	base := "http://" + addr

	oldKID := a.keys.Keys().Current.KID
	tok, err := a.keys.Sign(claims.KindID, &claims.Claims{Claims: jwt.Claims{
		Issuer: base, Subject: "1", Audience: jwt.Audience{"grafana"},
		Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour)), IssuedAt: jwt.NewNumericDate(time.Now()),
	}})
	if err != nil {
		t.Fatal(err)
	}

	code, out, errs := runCmd(t, nil, "keys", "rotate", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "by the running server") {
		t.Fatalf("keys rotate: exit %d, %q %q", code, out, errs)
	}
	newKID := a.keys.Keys().Current.KID
	if newKID == oldKID {
		t.Fatal("rotation did not change the current key")
	}
	got := kids(fetchJWKS(t, base))
	if !slices.Contains(got, oldKID) || !slices.Contains(got, newKID) {
		t.Fatalf("JWKS %v lacks old %s or new %s", got, oldKID, newKID)
	}

	provider, err := oidc.NewProvider(ctx, base)
	if err != nil {
		t.Fatalf("go-oidc NewProvider against the running server: %v", err)
	}
	v := provider.Verifier(&oidc.Config{ClientID: "grafana"})
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("a token signed before the rotation no longer verifies: %v", err)
	}

	// keys list sees the same set through the socket.
	code, out, _ = runCmd(t, nil, "keys", "list", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "previous  "+oldKID) || !strings.Contains(out, "current   "+newKID) {
		t.Errorf("keys list: %d\n%s", code, out)
	}

	// A second server on the same store is refused with a clear sentence.
	cfg2 := writeConfig(t, t.TempDir(), freeAddr(t), "")
	raw, _ := os.ReadFile(cfg2)
	raw = []byte(strings.Replace(string(raw), filepath.Dir(cfg2), dir, 1))
	os.WriteFile(cfg2, raw, 0o600)
	code, _, errs = runCmd(t, nil, "serve", "--config", cfg2)
	if code != exitRuntime || !strings.Contains(errs, "is locked by another process; is a second ghbroker running against the same file?") {
		t.Errorf("second serve: exit %d, %q", code, errs)
	}
}

// TestSIGKILLDuringRotation kills the server at random moments while keys
// rotate as fast as it can, many times, and checks that the store always
// opens and the served JWKS always holds the current key.
func TestSIGKILLDuringRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	dir, addr := t.TempDir(), freeAddr(t)
	// ES256 keys generate in microseconds, so rotations are back to back and
	// the kill lands inside a write transaction often.
	cfg := writeConfig(t, dir, addr, "keys: {algorithm: ES256}\n")
	sock := admin.SocketPath(filepath.Join(dir, "ghbroker.db"))
	rotations := 0
	for i := range 25 {
		p := startServe(t, cfg, addr)
		checkCurrentPublished(t, "http://"+addr, cfg)

		c, err := admin.Dial(sock)
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		loopDone := make(chan struct{})
		go func() {
			defer close(loopDone)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Rotate(context.Background()); err != nil {
					return // the server died under us: expected
				}
				rotations++
			}
		}()
		time.Sleep(time.Duration(20+rand.IntN(150)) * time.Millisecond)
		if err := p.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = p.Wait()
		close(stop)
		<-loopDone
		if t.Failed() {
			t.Fatalf("iteration %d failed", i)
		}
	}
	// And once more after the last kill.
	startServe(t, cfg, addr)
	checkCurrentPublished(t, "http://"+addr, cfg)
	t.Logf("%d rotations across 25 kills", rotations)
	if rotations < 25 {
		t.Errorf("only %d rotations happened; the test did not exercise rotation", rotations)
	}
}

// checkCurrentPublished asserts the running server's current key (from the
// admin socket) is in its JWKS.
func checkCurrentPublished(t *testing.T, base, cfgPath string) {
	t.Helper()
	code, out, errs := runCmd(t, nil, "keys", "list", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("keys list after a kill: exit %d: %s", code, errs)
	}
	var current string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "current" {
			current = f[1]
		}
	}
	if current == "" {
		t.Fatalf("no current key listed:\n%s", out)
	}
	if got := kids(fetchJWKS(t, base)); !slices.Contains(got, current) {
		t.Fatalf("JWKS %v lacks the current key %s", got, current)
	}
}

// TestServeMetricsAreItsOwn: the binary links etcd's server (for `dev
// --replicas`), whose packages register their collectors in prometheus's
// default registry and net/http/pprof's handlers in http.DefaultServeMux
// when the program starts. serve's /metrics is its own registry's only,
// and the debug handlers are on no listener.
func TestServeMetricsAreItsOwn(t *testing.T) {
	if !defaultRegistryHas(t, "etcd_server_") {
		t.Fatal("the default registry has no etcd_server_ metric: this test proves nothing")
	}
	addr := freeAddr(t)
	startAppFrom(t, writeConfig(t, t.TempDir(), addr, ""))
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(raw)
	if resp.StatusCode != http.StatusOK || !strings.Contains(metrics, "\nghbroker_revocations_entries ") {
		t.Fatalf("/metrics: %d\n%s", resp.StatusCode, metrics)
	}
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "etcd_") || strings.HasPrefix(l, "grpc_server_") {
			t.Errorf("/metrics serves etcd's metric %s", l)
			break
		}
	}
	for _, p := range []string{"/debug/pprof/", "/debug/vars"} {
		if got := get(t, "http://"+addr+p); got != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, got)
		}
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/broker/device"
	"github.com/ghbroker/ghbroker/internal/config"
	"github.com/ghbroker/ghbroker/revocation"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/etcd/etcdtest"
)

// writeEtcdConfig writes a config like writeConfig's, on etcd.
func writeEtcdConfig(t *testing.T, dir, addr string, endpoints []string, prefix, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`issuer: http://%s
listen: %q
log: {format: text, level: warn}
storage:
  etcd:
    endpoints: [%s]
    prefix: %s
    dial_timeout: 1s
    request_timeout: 1s
github:
  client_id: test-client
  client_secret: test-secret
  allowed_orgs: [acme]
`, addr, addr, strings.Join(endpoints, ", "), prefix) + extra
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startAppFrom runs a broker in-process until the test ends.
func startAppFrom(t *testing.T, cfgPath string) *app {
	t.Helper()
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, slog.New(slog.DiscardHandler), appOptions{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	<-a.ready
	return a
}

// TestEtcdReplicasFollowKeysRotate runs two brokers on one etcd prefix:
// `keys rotate` talks to etcd directly (there is no admin socket) and both
// replicas publish the new key within seconds.
func TestEtcdReplicasFollowKeysRotate(t *testing.T) {
	srv := etcdtest.Start(t)
	prefix := srv.Prefix()
	addrs := []string{freeAddr(t), freeAddr(t)}
	var cfgs []string
	for _, addr := range addrs {
		cfgs = append(cfgs, writeEtcdConfig(t, t.TempDir(), addr, srv.Endpoints(), prefix, ""))
	}
	if code, out, errs := runCmd(t, nil, "check-config", "--config", cfgs[0]); code != 0 {
		t.Fatalf("check-config: exit %d, %q %q", code, out, errs)
	}
	apps := []*app{startAppFrom(t, cfgs[0]), startAppFrom(t, cfgs[1])}
	if a, b := apps[0].keys.Keys().Current.KID, apps[1].keys.Keys().Current.KID; a != b {
		t.Fatalf("the replicas sign with different keys: %s and %s", a, b)
	}
	before := apps[0].keys.Keys()

	code, out, errs := runCmd(t, nil, "keys", "rotate", "--config", cfgs[1])
	if code != 0 || !strings.Contains(out, "in etcd") {
		t.Fatalf("keys rotate: exit %d, %q %q", code, out, errs)
	}
	deadline := time.Now().Add(10 * time.Second)
	for i, addr := range addrs {
		for {
			got := kids(fetchJWKS(t, "http://"+addr))
			if apps[i].keys.Keys().Current.KID == before.Next.KID && slices.Contains(got, before.Current.KID) && slices.Contains(got, before.Next.KID) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d still publishes %v (signs with %s) after keys rotate", i, got, apps[i].keys.Keys().Current.KID)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	resp, err := http.Get("http://" + addrs[0] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"ghbroker_store_request_duration_seconds_bucket{op=\"get_keys\"", "ghbroker_store_etcd_up 1"} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	code, out, _ = runCmd(t, nil, "keys", "list", "--config", cfgs[0])
	if code != 0 || !strings.Contains(out, "current   "+before.Next.KID) {
		t.Errorf("keys list: %d\n%s", code, out)
	}
}

// TestEtcdUnreachableAtStart: serve against endpoints nobody listens on
// exits 1 with a sentence naming them.
func TestEtcdUnreachableAtStart(t *testing.T) {
	ports, err := etcdtest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	ep := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	cfg := writeEtcdConfig(t, t.TempDir(), freeAddr(t), []string{ep}, "/ghbroker/", "")
	code, _, errs := runCmd(t, nil, "serve", "--config", cfg)
	if code != exitRuntime || !strings.Contains(errs, "etcd at "+ep+" did not answer within 1s") {
		t.Errorf("serve with etcd unreachable: exit %d, %q", code, errs)
	}
}

// TestEtcdMutualTLS serves against an etcd that requires client
// certificates, through storage.etcd.tls; without the client certificate
// the cluster refuses the broker at start-up.
func TestEtcdMutualTLS(t *testing.T) {
	dir := t.TempDir()
	serverTLS, clientTLS, err := etcdtest.WriteCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := etcdtest.NewTLS(dir, &serverTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	addr := freeAddr(t)
	tlsYAML := fmt.Sprintf("    tls: {ca_file: %s, cert_file: %s, key_file: %s}\n", clientTLS.CA, clientTLS.Cert, clientTLS.Key)
	cfg := writeEtcdConfig(t, t.TempDir(), addr, srv.Endpoints(), srv.Prefix(), "")
	raw, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(raw), "    request_timeout: 1s\n", "    request_timeout: 1s\n"+tlsYAML, 1)), 0o600)
	a := startAppFrom(t, cfg)
	if got := kids(fetchJWKS(t, "http://"+addr)); len(got) != 2 || a.keys.Keys().Current == nil {
		t.Fatalf("JWKS over mTLS etcd: %v", got)
	}

	// The CA alone, no client certificate: refused.
	noCert := writeEtcdConfig(t, t.TempDir(), freeAddr(t), srv.Endpoints(), srv.Prefix(), "")
	raw, _ = os.ReadFile(noCert)
	os.WriteFile(noCert, []byte(strings.Replace(string(raw), "    request_timeout: 1s\n",
		"    request_timeout: 1s\n    tls: {ca_file: "+clientTLS.CA+"}\n", 1)), 0o600)
	if code, _, errs := runCmd(t, nil, "keys", "list", "--config", noCert); code != exitRuntime || !strings.Contains(errs, "did not answer") {
		t.Errorf("without a client certificate: exit %d, %q", code, errs)
	}
}

// TestEtcdReplicasShareRevocations: a revocation recorded by one broker
// replica (a sign-out, a webhook) is refused by the other's checks within
// seconds, through the store's watch; and `sessions revoke` against etcd
// reaches both.
func TestEtcdReplicasShareRevocations(t *testing.T) {
	srv := etcdtest.Start(t)
	prefix := srv.Prefix()
	var cfgs []string
	for range 2 {
		cfgs = append(cfgs, writeEtcdConfig(t, t.TempDir(), freeAddr(t), srv.Endpoints(), prefix, ""))
	}
	apps := []*app{startAppFrom(t, cfgs[0]), startAppFrom(t, cfgs[1])}
	before := time.Now().Add(time.Second).UnixMilli()
	if _, err := apps[0].revocations.Add(revocation.Entry{Subject: "583231", Before: before, Expires: before + 3_600_000, Source: "webhook"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !apps[1].revocations.Revoked("583231", "", before-1) {
		if time.Now().After(deadline) {
			t.Fatal("the other replica never learned the revocation")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if apps[1].revocations.Revoked("583231", "", before) {
		t.Error("a token minted at the revocation's instant is refused")
	}
}

// TestEtcdReplicasShareDeviceBudget: the device handler that serve builds
// counts wrong user codes in the engine's store, so two replicas on one
// etcd prefix spend one deployment-wide budget (device.DefaultLimits: 60
// per minute) between them, whichever one and whichever session enters the
// codes.
func TestEtcdReplicasShareDeviceBudget(t *testing.T) {
	srv := etcdtest.Start(t)
	prefix := srv.Prefix()
	var addrs, cfgs []string
	for range 2 {
		addrs = append(addrs, freeAddr(t))
		cfgs = append(cfgs, writeEtcdConfig(t, t.TempDir(), addrs[len(addrs)-1], srv.Endpoints(), prefix, ""))
	}
	apps := []*app{startAppFrom(t, cfgs[0]), startAppFrom(t, cfgs[1])}
	lim := device.DefaultLimits
	// Signed-in browsers: session tokens minted by each replica's session
	// manager (each has an issuer of its own here), a few entries per
	// session, well within each session's and each replica's bucket.
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cookie := func(replica, i int) string {
		tok, err := apps[replica].sessions.Mint(store.Session{ID: fmt.Sprintf("sid-%d", i), Subject: "583231", Login: "octocat", Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return "_ghbroker=" + tok
	}
	enter := func(replica, session, n int) *http.Response {
		a := device.Alphabet
		code := fmt.Sprintf("BBBB-BB%c%c", a[n/20%20], a[n%20]) // no code of these has been issued
		req, _ := http.NewRequest(http.MethodGet, "http://"+addrs[replica]+"/device?user_code="+code, nil)
		req.Header.Set("Cookie", cookie(replica, session))
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// The budget is per minute: start early in one, so that the entries
	// below all fall in it.
	if left := time.Until(time.Now().Truncate(lim.DeploymentWindow).Add(lim.DeploymentWindow)); left < 10*time.Second {
		time.Sleep(left + 100*time.Millisecond)
	}
	window := time.Now().Truncate(lim.DeploymentWindow)
	for n := range lim.DeploymentLimit {
		if resp := enter(n%2, n/4, n); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("wrong code %d on replica %d = %s, want 404", n, n%2, resp.Status)
		}
	}
	for replica := range 2 {
		resp := enter(replica, 1000+replica, 9999)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("replica %d past the deployment's budget = %s (Retry-After %q), want 429 with Retry-After", replica, resp.Status, resp.Header.Get("Retry-After"))
		}
	}
	if now := time.Now().Truncate(lim.DeploymentWindow); !now.Equal(window) {
		t.Fatalf("the test crossed into the next window (%s → %s); it cannot judge the count", window, now)
	}
}

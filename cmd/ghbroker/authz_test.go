package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/internal/config"
)

// startApp runs a broker in this process from writeConfig's config plus
// extra, and returns it once every listener is bound.
func startApp(t *testing.T, addr, extra string) *app {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Load(writeConfig(t, dir, addr, extra), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, slog.New(slog.DiscardHandler), appOptions{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var runErr error
	exited := make(chan struct{})
	go func() { runErr = a.run(ctx); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	select {
	case <-a.ready:
	case <-exited:
		t.Fatalf("serve: %v", runErr)
	case <-time.After(20 * time.Second):
		t.Fatal("never ready")
	}
	return a
}

// rawRequest sends one request, written as is, and returns the status of
// the answer.
func rawRequest(t *testing.T, addr, request string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", request, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestChecksSeeTheRawPath is issue #13 finding 2 on the listeners: the
// broker's router once cleaned /authz/%2e%2e/admin into a 301 to /admin,
// and net/http answered "OPTIONS *" on authz.listen with 200 without any
// check. Both are checks now, and both are refused.
func TestChecksSeeTheRawPath(t *testing.T) {
	addr, check := freeAddr(t), freeAddr(t)
	startApp(t, addr, "authz:\n  listen: "+check+"\n")
	for _, target := range []string{"/authz/%2e%2e/admin", "/authz/../admin", "/authz/x/./y", "/authz//admin"} {
		if got := rawRequest(t, addr, "GET "+target+" HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\n\r\n"); got != http.StatusForbidden {
			t.Errorf("main listener %s = %d, want 403 (a path not in normal form)", target, got)
		}
	}
	for _, target := range []string{"/%2e%2e/admin", "//admin"} {
		if got := rawRequest(t, check, "GET "+target+" HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\n\r\n"); got != http.StatusForbidden {
			t.Errorf("authz.listen %s = %d, want 403", target, got)
		}
	}
	for name, a := range map[string]string{"authz.listen": check, "listen": addr} {
		got := rawRequest(t, a, "OPTIONS * HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
		if got/100 == 2 {
			t.Errorf("%s: OPTIONS * = %d, want a refusal", name, got)
		}
	}
	if got := rawRequest(t, check, "OPTIONS * HTTP/1.1\r\nHost: app.example.com\r\n\r\n"); got != http.StatusUnauthorized {
		t.Errorf("authz.listen: OPTIONS * = %d, want 401 invalid_request", got)
	}
	// The rest of the main listener is the broker's, as before.
	if got := rawRequest(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); got != http.StatusOK {
		t.Errorf("/healthz = %d", got)
	}
	if got := rawRequest(t, addr, "GET /authzx HTTP/1.1\r\nHost: x\r\n\r\n"); got != http.StatusUnauthorized {
		t.Errorf("/authzx = %d, want 401 (not under the prefix)", got)
	}
}

// slowLimits are listener limits short enough for a test.
const slowLimits = `listeners:
  read_header_timeout: 400ms
  read_timeout: 800ms
  write_timeout: 2s
  idle_timeout: 600ms
  max_connections: %d
`

// closedWithin reports whether the server closes c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue // a response (400, 408): the close comes next
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// TestSlowClientsAreCutOff is issue #13 finding 3: hundreds of connections
// that send their headers or body slowly, or nothing at all, neither stop
// the check from answering nor stay open past the listener's timeouts.
func TestSlowClientsAreCutOff(t *testing.T) {
	addr, check := freeAddr(t), freeAddr(t)
	startApp(t, addr, "authz:\n  listen: "+check+"\n"+fmt.Sprintf(slowLimits, 1024))

	const slow = 300
	conns := make([]net.Conn, 0, slow)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range slow {
		c, err := net.DialTimeout("tcp", check, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		switch i % 3 {
		case 0: // headers that never end (slowloris)
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Slow: ")
		case 1: // a body that never comes
			_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 1000000\r\n\r\nx")
		case 2: // nothing at all
		}
	}
	start := time.Now()
	if got := rawRequest(t, check, "GET / HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\n\r\n"); got != http.StatusUnauthorized {
		t.Errorf("check beside %d slow connections: %d, want 401", slow, got)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("check beside %d slow connections took %s", slow, d)
	}
	// Every slow connection is closed by the server within its timeout
	// (read_timeout 800ms after it was accepted), with some slack.
	deadline := time.Now().Add(3 * time.Second)
	for i, c := range conns {
		if !closedWithin(c, time.Until(deadline)) {
			t.Fatalf("slow connection %d (kind %d) still open %s after it was opened", i, i%3, time.Since(start))
		}
	}
	// An idle keep-alive connection is closed too.
	c, err := net.Dial("tcp", check)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\n\r\n")
	if !closedWithin(c, 3*time.Second) {
		t.Error("an idle keep-alive connection stayed open past idle_timeout")
	}
}

// TestConnectionsPerListenerCapped: a listener holds at most
// listeners.max_connections connections; the next waits until one closes.
func TestConnectionsPerListenerCapped(t *testing.T) {
	addr, check := freeAddr(t), freeAddr(t)
	startApp(t, addr, "authz:\n  listen: "+check+"\n"+fmt.Sprintf(slowLimits, 4))
	var held []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", check)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	time.Sleep(50 * time.Millisecond) // let the server accept them
	c, err := net.Dial("tcp", check)  // the kernel accepts it; the server does not, yet
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the fifth connection was never served: %v", err)
	}
	resp.Body.Close()
	// The four held connections are cut off after read_header_timeout
	// (400ms); only then is the fifth accepted.
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("the fifth connection was served after %s, while four were held (max_connections: 4)", d)
	}
	for _, h := range held {
		if !closedWithin(h, time.Second) {
			t.Error("a held connection is still open")
		}
	}
}

// get answers GET u with its status.
func get(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestMetricsListen is issue #13 finding 5: with metrics.listen set,
// /metrics is served there, and only there, by the broker and by the
// replica.
func TestMetricsListen(t *testing.T) {
	addr, metrics := freeAddr(t), freeAddr(t)
	startApp(t, addr, "metrics:\n  listen: "+metrics+"\n")
	if got := get(t, "http://"+metrics+"/metrics"); got != http.StatusOK {
		t.Errorf("metrics.listen /metrics = %d, want 200", got)
	}
	if got := get(t, "http://"+addr+"/metrics"); got == http.StatusOK {
		t.Errorf("listen /metrics = %d, want none while metrics.listen is set", got)
	}
	if got := get(t, "http://"+metrics+"/healthz"); got == http.StatusOK {
		t.Errorf("metrics.listen serves /healthz (%d): it serves /metrics alone", got)
	}

	// Without metrics.listen, the main listener serves /metrics as before.
	plain := freeAddr(t)
	startApp(t, plain, "")
	if got := get(t, "http://"+plain+"/metrics"); got != http.StatusOK {
		t.Errorf("listen /metrics without metrics.listen = %d, want 200", got)
	}
}

// startReplica runs `ghbroker authz` in this process with a config of
// listen, policy and extra; the JWKS it fetches need not exist.
func startReplica(t *testing.T, addr, extra string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "authz.yaml")
	src := fmt.Sprintf("issuer: https://auth.example.com\nlisten: %q\nlog: {format: text}\n", addr) + extra
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var code int
	exited := make(chan struct{})
	var out syncBuffer
	go func() {
		code = run(ctx, env{stdout: &out, stderr: &out, lookupEnv: func(string) (string, bool) { return "", false }},
			[]string{"authz", "--config", cfg, "--jwks-url", "http://127.0.0.1:9/keys"})
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "authz replica serving") {
		select {
		case <-exited:
			t.Fatalf("authz exited %d:\n%s", code, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica never served:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestReplicaMetricsListen(t *testing.T) {
	addr, metrics := freeAddr(t), freeAddr(t)
	startReplica(t, addr, "metrics:\n  listen: "+metrics+"\n")
	if got := get(t, "http://"+metrics+"/metrics"); got != http.StatusOK {
		t.Errorf("metrics.listen /metrics = %d, want 200", got)
	}
	if got := get(t, "http://"+addr+"/metrics"); got == http.StatusOK {
		t.Errorf("listen /metrics = %d, want none while metrics.listen is set", got)
	}
	if got := get(t, "http://"+addr+"/healthz"); got != http.StatusOK {
		t.Errorf("listen /healthz = %d", got)
	}
	// The replica's /authz is not cleaned by its ServeMux either.
	if got := rawRequest(t, addr, "GET /authz/%2e%2e/admin HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\n\r\n"); got != http.StatusForbidden {
		t.Errorf("replica /authz/%%2e%%2e/admin = %d, want 403", got)
	}
}

// TestDialectPaths is issue #13 finding 11 on the listeners: authz.dialect
// fixes authz.listen's dialect, /authz-envoy, /authz-nginx and
// /authz-traefik fix theirs on the main listener, and /authz tells it from
// the headers but refuses a mix.
func TestDialectPaths(t *testing.T) {
	addr, check := freeAddr(t), freeAddr(t)
	startApp(t, addr, "authz:\n  listen: "+check+"\n  dialect: envoy\n"+
		"policy:\n  rules:\n    - {hosts: [app.example.com], paths: [/public], public: true}\n")
	req := func(target string, hdr ...string) string {
		s := "GET " + target + " HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\n"
		for i := 0; i+1 < len(hdr); i += 2 {
			s += hdr[i] + ": " + hdr[i+1] + "\r\n"
		}
		return s + "\r\n"
	}
	for _, tt := range []struct {
		name, addr, request string
		want                int
	}{
		{"authz.listen fixed to envoy: its path", check, req("/public/x"), 200},
		{"authz.listen fixed to envoy: a forged X-Original-URI decides nothing", check, req("/admin", "X-Original-URI", "/public"), 401},
		{"/authz-envoy: its path", addr, req("/authz-envoy/public/x"), 200},
		{"/authz-envoy: a forged X-Original-URI decides nothing", addr, req("/authz-envoy/admin", "X-Original-URI", "/public"), 401},
		{"/authz-nginx", addr, req("/authz-nginx", "X-Original-URI", "/public"), 200},
		{"/authz-nginx: X-Forwarded-Uri decides nothing", addr, req("/authz-nginx", "X-Forwarded-Uri", "/public"), 401},
		{"/authz-traefik", addr, req("/authz-traefik", "X-Forwarded-Uri", "/public", "X-Forwarded-Host", "app.example.com"), 200},
		{"/authz-traefik: X-Original-URI decides nothing", addr, req("/authz-traefik", "X-Original-URI", "/public"), 401},
		{"/authz: nginx headers at the bare prefix", addr, req("/authz", "X-Original-URI", "/public"), 200},
		{"/authz: an Emissary check with a forged X-Original-URI", addr, req("/authz/admin", "X-Original-URI", "/public"), 401},
		{"/authz: Emissary", addr, req("/authz/public"), 200},
	} {
		if got := rawRequest(t, tt.addr, tt.request); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

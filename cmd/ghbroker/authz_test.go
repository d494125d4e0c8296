package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
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
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-a.ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
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

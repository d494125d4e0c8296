//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNginxOneMeaningPerPath is issue #13 finding 2 with real nginx and
// the shipped snippet in front of an upstream whose router does not
// resolve dot segments (it routes on the raw path, and drops ";"
// parameters as Tomcat does). /public is public, the rest of the host is
// for acme/admins: no traversal, encoded slash, parameter, backslash or
// double-encoding path gets an anonymous client to the upstream's /admin.
func TestNginxOneMeaningPerPath(t *testing.T) {
	if _, err := os.Stat(nginxPath); err != nil {
		t.Fatalf("nginx is not installed at %s: run `make test`, which installs it (apt-get install nginx)", nginxPath)
	}
	devPort := freePort(t)
	start(t, "ghbroker dev is running", "dev", "--port", fmt.Sprint(devPort))
	issuer := fmt.Sprintf("http://ghbroker.localhost:%d", devPort)

	listenPort := freePort(t)
	cfg := filepath.Join(t.TempDir(), "authz.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: "127.0.0.1:%d"
log: {format: text}
session:
  cookie_domain: .ghbroker.localhost
  allowed_redirect_domains: [.ghbroker.localhost]
policy:
  rules:
    - hosts: [app.ghbroker.localhost]
      paths: [/public]
      public: true
    - hosts: [app.ghbroker.localhost]
      allow: {groups: [acme/admins]}
`, listenPort)), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, "authz replica serving", "authz", "--issuer", issuer, "--jwks-url", fmt.Sprintf("http://127.0.0.1:%d/keys", devPort), "--config", cfg)
	waitReady(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", listenPort))

	// The upstream's router: the raw path, or the raw path without
	// ";parameters", under /admin is the admin area.
	var mu sync.Mutex
	var reachedAdmin []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _, _ := strings.Cut(r.RequestURI, "?")
		for _, reading := range []string{raw, stripParams(raw), strings.ReplaceAll(raw, `\`, "/")} {
			if reading == "/admin" || strings.HasPrefix(reading, "/admin/") || strings.HasPrefix(reading, "/admin%2F") || strings.HasPrefix(reading, "/admin%2f") {
				mu.Lock()
				reachedAdmin = append(reachedAdmin, r.RequestURI)
				mu.Unlock()
				fmt.Fprintln(w, "the admin area")
				return
			}
		}
		fmt.Fprintln(w, "public page")
	}))
	t.Cleanup(upstream.Close)
	nginxPort := freePort(t)
	startNginx(t, nginxPort, listenPort, issuer, upstream.Listener.Addr().String())

	nginx := fmt.Sprintf("127.0.0.1:%d", nginxPort)
	if got := rawGet(t, nginx, "/public/x"); got != http.StatusOK {
		t.Fatalf("/public/x = %d, want 200", got)
	}
	if got := rawGet(t, nginx, "/admin/x"); got != http.StatusFound { // nginx's error_page 401: sign in
		t.Fatalf("/admin/x = %d, want 302 to sign in", got)
	}
	for _, target := range []string{
		"/admin/../public", "/admin%2F..%2Fpublic", "/admin/x/../../public/y", "/admin/./../public",
		"/public/..;/admin", `/public/..\admin`, "/public/%252e%252e/admin", "/public/%2e%2e/admin",
		"/admin;/../public", "/admin//../public", "/ADMIN/../public",
	} {
		got := rawGet(t, nginx, target)
		if got == http.StatusOK || got/100 == 5 {
			t.Errorf("%s = %d, want a refusal", target, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reachedAdmin) > 0 {
		t.Errorf("anonymous requests reached the upstream's admin area: %q", reachedAdmin)
	}
}

func stripParams(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i], _, _ = strings.Cut(s, ";")
	}
	return strings.Join(segs, "/")
}

// rawGet sends GET target to addr exactly as written (no client library
// between: Go's would escape the backslash) for app.ghbroker.localhost and
// returns the status.
func rawGet(t *testing.T, addr, target string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: app.ghbroker.localhost\r\nAccept: text/html\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

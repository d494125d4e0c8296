//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNginxAgreeingGatewayHeaders puts real nginx in front of `ghbroker
// authz` (the stateless replica, keys from `ghbroker dev`) with a check
// location that sends every header an nginx guide suggests at once:
// X-Original-URL $scheme://$http_host$request_uri, X-Original-URI
// $request_uri and X-Forwarded-Host $http_host next to Host $host. They
// agree, so they are one request: a signed-out client goes app → login →
// app, a public host answers anonymously. A location whose headers
// disagree is refused (401), never allowed and never a 5xx, and the
// replica says why at warn level.
func TestNginxAgreeingGatewayHeaders(t *testing.T) {
	if _, err := os.Stat(nginxPath); err != nil {
		t.Fatalf("nginx is not installed at %s: run `make test`, which installs it (apt-get install nginx)", nginxPath)
	}
	// nginx fronts every host, the broker's and the GitHub emulator's too,
	// on the broker's port but another loopback address: the broker sends
	// a browser back only to its own port.
	devPort := freePort(t)
	nginxPort, front := devPort, "127.0.0.2"
	start(t, "ghbroker dev is running", "dev", "--port", fmt.Sprint(devPort), "--auto-login", "alice")
	issuer := fmt.Sprintf("http://ghbroker.localhost:%d", devPort)

	listen, check := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(t.TempDir(), "authz.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %q
log: {format: text}
authz:
  listen: %q
session:
  cookie_domain: .ghbroker.localhost
  allowed_redirect_domains: [.ghbroker.localhost]
policy:
  rules:
    - hosts: [app.ghbroker.localhost]
      allow: {groups: [acme/sre]}
    - hosts: [status.ghbroker.localhost]
      public: true
`, listen, check)), 0o600); err != nil {
		t.Fatal(err)
	}
	replica := start(t, "authz replica serving", "authz", "--issuer", issuer, "--jwks-url", fmt.Sprintf("http://127.0.0.1:%d/keys", devPort), "--config", cfg)
	waitReady(t, "http://"+listen+"/readyz")

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"user": r.Header.Get("X-Auth-Request-User"), "host": r.Host, "path": r.URL.RequestURI()})
	}))
	t.Cleanup(upstream.Close)

	checkLocation := func(name, originalURI string) string {
		return fmt.Sprintf(`
    location = %s {
        internal;
        proxy_pass http://%s/;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header Host $host;
        proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
        proxy_set_header X-Original-URI %s;
        proxy_set_header X-Original-Method $request_method;
        proxy_set_header X-Forwarded-Host $http_host;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Uri "";
        proxy_buffer_size 16k;
        proxy_buffers 4 16k;
        proxy_busy_buffers_size 32k;
    }`, name, check, originalURI)
	}
	site := fmt.Sprintf(`
server {
    listen %[6]s:%[1]d;
    server_name ghbroker.localhost github.localhost;
    location / {
        proxy_set_header Host $http_host;
        proxy_pass http://127.0.0.1:%[1]d;
    }
}
server {
    listen %[6]s:%[1]d;
    server_name app.ghbroker.localhost status.ghbroker.localhost;
%s
%s
    location / {
        auth_request /_check;
        auth_request_set $user $upstream_http_x_auth_request_user;
        error_page 401 = @login;
        proxy_set_header X-Auth-Request-User $user;
        proxy_set_header Host $host;
        proxy_pass http://%s;
    }
    # A misconfigured check: its X-Original-URI is not the request's.
    location /mismatch/ {
        auth_request /_check_mismatch;
        proxy_pass http://%[4]s;
    }
    location @login {
        return 302 %[5]s/login?rd=$scheme://$http_host$request_uri;
    }
}
`, nginxPort, checkLocation("/_check", "$request_uri"), checkLocation("/_check_mismatch", "/somewhere/else"), upstream.Listener.Addr().String(), issuer, front)
	runNginx(t, t.TempDir(), front, nginxPort, map[string]string{"site.conf": site})

	app := fmt.Sprintf("http://app.ghbroker.localhost:%d/dashboards/1?x=y", nginxPort)

	// Signed out: app → nginx's 401 page → the broker's login → GitHub
	// emulator → callback → back to app, signed in.
	c := newClientVia(t, front)
	resp, body, visited := c.follow(t, app)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != app {
		t.Fatalf("signed-out journey ended with %d at %s:\n%s\nvia %s", resp.StatusCode, resp.Request.URL, body, strings.Join(visited, "\n    "))
	}
	if !strings.HasPrefix(visited[1], issuer+"/login?rd=") {
		t.Errorf("app did not send the browser to the login first: %s", strings.Join(visited, "\n    "))
	}
	var seen map[string]string
	if err := json.Unmarshal([]byte(body), &seen); err != nil || seen["user"] != "alice" || seen["path"] != "/dashboards/1?x=y" {
		t.Errorf("upstream answer %q (%v)", body, err)
	}

	// A client's own gateway headers are overwritten by nginx: still one
	// request, still allowed.
	req, _ := http.NewRequest(http.MethodGet, app, nil)
	req.Header.Set("X-Forwarded-Host", "evil.example.com")
	req.Header.Set("X-Original-URI", "/admin")
	if resp, err := c.http.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusOK {
		t.Errorf("client-sent gateway headers: %d, want 200", resp.StatusCode)
	}

	// A public host answers anonymously.
	anon := newClientVia(t, front)
	if resp, body := anon.get(t, fmt.Sprintf("http://status.ghbroker.localhost:%d/", nginxPort)); resp.StatusCode != http.StatusOK {
		t.Errorf("public host, anonymous: %d %s", resp.StatusCode, body)
	}

	// Disagreeing headers are refused whoever asks: never 2xx, never 5xx.
	for name, cl := range map[string]*client{"signed in": c, "anonymous": anon} {
		resp, body := cl.get(t, fmt.Sprintf("http://app.ghbroker.localhost:%d/mismatch/x", nginxPort))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s, disagreeing headers: %d %s, want 401", name, resp.StatusCode, body)
		}
	}
	waitLine(t, replica, "authz check refused as malformed", "X-Original-URL and X-Original-URI name different paths")
}

// waitReady polls a readiness endpoint until it answers 200.
func waitReady(t *testing.T, u string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never ready: %v", u, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLine waits for an output line of p that contains every one of want.
func waitLine(t *testing.T, p *proc, want ...string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-p.lines:
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(l, w)
			}
			if ok {
				return
			}
		case <-deadline:
			t.Fatalf("no line with %q", want)
		}
	}
}

// follow GETs u and follows redirects as a browser does, returning the
// last response, its body and every URL visited.
func (c *client) follow(t *testing.T, u string) (*http.Response, string, []string) {
	t.Helper()
	visited := []string{u}
	for range 15 {
		resp, body := c.get(t, u)
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || loc == "" {
			return resp, body, visited
		}
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			t.Fatalf("Location %q: %v", loc, err)
		}
		u = next.String()
		visited = append(visited, u)
	}
	t.Fatalf("redirect loop: %s", strings.Join(visited, "\n    "))
	return nil, "", nil
}

// newClientVia is newClient dialling every name to the loopback address ip.
func newClientVia(t *testing.T, ip string) *client {
	c := newClient(t)
	c.http.Transport = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(ip, port))
	}}
	return c
}

//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const nginxPath = "/usr/sbin/nginx"

// TestNginxAuthRequest puts real nginx, configured with the snippet the docs
// ship (deploy/nginx), in front of a demo upstream, with `ghbroker dev` as
// the broker: a signed-out request is sent to sign in (nginx's
// error_page 401), a signed-in one reaches the upstream with the identity
// headers, a user outside the required team gets 403.
func TestNginxAuthRequest(t *testing.T) {
	if _, err := os.Stat(nginxPath); err != nil {
		t.Fatalf("nginx is not installed at %s: run `make test`, which installs it (apt-get install nginx)", nginxPath)
	}
	devPort, nginxPort := freePort(t), freePort(t)
	start(t, "ghbroker dev is running", "dev", "--port", fmt.Sprint(devPort), "--auto-login", "alice")
	issuer := fmt.Sprintf("http://ghbroker.localhost:%d", devPort)

	// The upstream echoes what nginx forwarded.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{
			"user": r.Header.Get("X-Auth-Request-User"), "groups": r.Header.Get("X-Auth-Request-Groups"),
			"email": r.Header.Get("X-Auth-Request-Email"), "authorization": r.Header.Get("Authorization"),
			"host": r.Host, "path": r.URL.RequestURI(),
		})
	}))
	t.Cleanup(upstream.Close)
	startNginx(t, nginxPort, devPort, issuer, upstream.Listener.Addr().String())

	app := fmt.Sprintf("http://app.ghbroker.localhost:%d/dashboards/1?x=y", nginxPort)
	admin := fmt.Sprintf("http://admin.ghbroker.localhost:%d/", nginxPort)

	// Signed out: nginx turns the broker's 401 into the sign-in redirect.
	c := newClient(t)
	resp, _ := c.get(t, app)
	wantLogin := issuer + "/login?rd=" + fmt.Sprintf("http://app.ghbroker.localhost:%d/dashboards/1?x=y", nginxPort)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != wantLogin {
		t.Fatalf("signed out: %d Location=%q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), wantLogin)
	}

	// Sign in as alice (acme/admins) through the broker and the emulator.
	c.signIn(t, issuer, "alice")
	resp, body := c.get(t, app)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signed in: %d %s", resp.StatusCode, body)
	}
	var seen map[string]string
	if err := json.Unmarshal([]byte(body), &seen); err != nil {
		t.Fatalf("upstream answer %q", body)
	}
	if seen["user"] != "alice" || !strings.Contains(seen["groups"], "acme/sre") || !strings.HasPrefix(seen["authorization"], "Bearer ey") {
		t.Errorf("upstream saw %v", seen)
	}
	if seen["path"] != "/dashboards/1?x=y" {
		t.Errorf("upstream path %q", seen["path"])
	}
	if resp, _ := c.get(t, admin); resp.StatusCode != http.StatusOK {
		t.Errorf("alice on admin: %d", resp.StatusCode)
	}

	// bob is in acme but not acme/admins: the admin service answers 403.
	bob := newClient(t)
	bob.signIn(t, issuer, "bob")
	if resp, _ := bob.get(t, app); resp.StatusCode != http.StatusOK {
		t.Errorf("bob on app: %d", resp.StatusCode)
	}
	if resp, body := bob.get(t, admin); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob on admin: %d %s", resp.StatusCode, body)
	}

	// A client cannot choose what is checked by sending nginx-dialect
	// headers itself: the snippet overwrites them.
	req, _ := http.NewRequest(http.MethodGet, admin, nil)
	req.Header.Set("X-Original-URL", "http://app.ghbroker.localhost/")
	req.Header.Set("X-Forwarded-Uri", "/")
	resp, err := bob.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged X-Original-URL got %d", resp.StatusCode)
	}
}

// startNginx runs nginx in the foreground with deploy/nginx's files, their
// two documented placeholders replaced.
func startNginx(t *testing.T, port, devPort int, issuer, upstream string) {
	t.Helper()
	dir := t.TempDir()
	read := func(name string) string {
		raw, err := os.ReadFile(filepath.Join("..", "deploy", "nginx", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	snippet := strings.NewReplacer(
		"http://ghbroker.auth.svc:8080", fmt.Sprintf("http://127.0.0.1:%d", devPort),
		"https://auth.example.com", issuer,
	).Replace(read("ghbroker-auth.conf"))
	site := strings.NewReplacer(
		"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", port),
		"server_name app.tools.example.com;", "server_name app.ghbroker.localhost admin.ghbroker.localhost;",
		"/etc/nginx/snippets/ghbroker-auth.conf", filepath.Join(dir, "ghbroker-auth.conf"),
		"http://127.0.0.1:3000", "http://"+upstream,
		"https://auth.example.com", issuer,
	).Replace(read("example-site.conf"))
	if !strings.Contains(site, filepath.Join(dir, "ghbroker-auth.conf")) || !strings.Contains(site, upstream) {
		t.Fatalf("example-site.conf no longer has the lines this test adapts:\n%s", site)
	}
	runNginx(t, dir, "127.0.0.1", port, map[string]string{"ghbroker-auth.conf": snippet, "site.conf": site})
}

// runNginx writes files (site.conf among them) into dir and runs nginx in
// the foreground with an nginx.conf that includes site.conf, answering on
// ip:port; its error log is shown when the test fails.
func runNginx(t *testing.T, dir, ip string, port int, files map[string]string) {
	t.Helper()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	files["nginx.conf"] = fmt.Sprintf(`%s
daemon off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/site.conf;
}
`, user, dir)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", filepath.Join(dir, "nginx.conf")}
	if out, err := exec.Command(nginxPath, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(nginxPath, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error.log:\n%s", log)
		}
	})
	waitHTTP(t, fmt.Sprintf("http://%s:%d/", ip, port))
}

// client is a browser-like HTTP client: a cookie jar, no automatic
// redirects, and every *.localhost name resolved to loopback.
type client struct {
	http *http.Client
}

func newClient(t *testing.T) *client {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}}
	return &client{http: &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn follows /login through the GitHub emulator (which signs in the
// user named by login_hint) back to the broker.
func (c *client) signIn(t *testing.T, issuer, login string) {
	t.Helper()
	u := issuer + "/login?login_hint=" + url.QueryEscape(login)
	for range 10 {
		resp, body := c.get(t, u)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || loc == "" {
			if !strings.Contains(body, `id="signed-in"`) {
				t.Fatalf("sign-in as %s ended with %d at %s:\n%s", login, resp.StatusCode, u, body)
			}
			return
		}
		next, _ := url.Parse(u)
		nu, _ := next.Parse(loc)
		u = nu.String()
	}
	t.Fatal("sign-in redirect loop")
}

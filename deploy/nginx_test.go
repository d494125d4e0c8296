package deploy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/authz"
)

// The nginx files and the two values in them that an installation (and
// the nginx end-to-end test) replaces as plain text.
const (
	nginxSnippetPath = "nginx/ghbroker-auth.conf"
	nginxSitePath    = "nginx/example-site.conf"
	// nginxBrokerAddr is the broker's main listener as the snippet writes it.
	nginxBrokerAddr = "http://ghbroker.auth.svc:8080"
	// nginxIssuer is the issuer as the snippet writes it.
	nginxIssuer = "https://auth.example.com"
	// nginxSnippetInclude is where example-site.conf includes the snippet from.
	nginxSnippetInclude = "/etc/nginx/snippets/ghbroker-auth.conf"
	// nginxUpstream is the protected application in example-site.conf.
	nginxUpstream = "http://127.0.0.1:3000"
)

func readText(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// nginxDirectives returns the snippet's directives, one a string with
// whitespace collapsed and comments dropped.
func nginxDirectives(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			out = append(out, line)
		}
	}
	return out
}

func TestNginxSnippetAgreesWithTheBroker(t *testing.T) {
	cfg, _ := loadConfig(t)
	snippet := readText(t, nginxSnippetPath)
	site := readText(t, nginxSitePath)
	if nginxIssuer != cfg.Issuer {
		t.Fatalf("the nginx files write the issuer as %s, the example config as %s", nginxIssuer, cfg.Issuer)
	}

	// The broker address is the main listener of the broker Service, and
	// /authz-nginx is where it answers nginx's checks.
	be, rest, err := resolveAddress(mustRender(t)["base"], nginxBrokerAddr+"/authz-nginx")
	if err != nil {
		t.Fatal(err)
	}
	if be.Command != "serve" || be.Port.ContainerPort != portOf(t, cfg.Listen) {
		t.Errorf("%s reaches %s port %d%s, not the broker's main listener", nginxBrokerAddr, be.Command, be.Port.ContainerPort, rest)
	}
	checkDialect(t, "the nginx snippet", cfg, be, rest, authz.DialectNginx)

	want := []string{
		"location = /_ghbroker_auth {",
		"internal;",
		"proxy_pass " + nginxBrokerAddr + "/authz-nginx;",
		"proxy_pass_request_body off;",
		`proxy_set_header Content-Length "";`,
		"proxy_set_header X-Original-URI $request_uri;",
		"proxy_set_header X-Original-Method $request_method;",
		"proxy_set_header X-Forwarded-Host $http_host;",
		"proxy_set_header X-Forwarded-Proto $scheme;",
		"proxy_set_header Host $host;",
		// A client-sent X-Original-URL would decide what is checked.
		`proxy_set_header X-Original-URL "";`,
		"location @ghbroker_login {",
		"return 302 " + cfg.Issuer + "/login?rd=$scheme://$http_host$request_uri;",
	}
	got := nginxDirectives(snippet)
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s lacks %q", nginxSnippetPath, w)
		}
	}

	siteDirectives := nginxDirectives(site)
	wantSite := []string{
		"include " + nginxSnippetInclude + ";",
		"auth_request /_ghbroker_auth;",
		"error_page 401 = @ghbroker_login;",
		"auth_request_set $authz $upstream_http_authorization;",
		"proxy_set_header Authorization $authz;",
	}
	for _, v := range []string{"user", "email", "groups"} {
		h := "X-Auth-Request-" + strings.ToUpper(v[:1]) + v[1:]
		wantSite = append(wantSite,
			fmt.Sprintf("auth_request_set $%s $upstream_http_x_auth_request_%s;", v, v),
			fmt.Sprintf("proxy_set_header %s $%s;", h, v))
	}
	for _, w := range wantSite {
		if !slices.Contains(siteDirectives, w) {
			t.Errorf("%s lacks %q", nginxSitePath, w)
		}
	}
}

// authCall is what the fake broker saw of one auth subrequest.
type authCall struct {
	Method string
	Path   string
	Host   string
	Header http.Header
}

// TestNginxSnippetWithRealNginx runs the documented files in a real nginx
// (when installed) against a fake broker and a fake upstream, with the
// two placeholders replaced as the docs say: a signed-out browser is sent
// to sign in with its URL, an allowed request reaches the upstream with
// the identity headers, a forbidden one gets 403, and the subrequest
// carries the original URI, method and host while a client's own
// X-Original-URL is dropped.
func TestNginxSnippetWithRealNginx(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not installed (scripts/test installs it)")
	}
	var mu sync.Mutex
	var calls []authCall
	broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, authCall{Method: r.Method, Path: r.URL.Path, Host: r.Host, Header: r.Header.Clone()})
		mu.Unlock()
		switch r.Header.Get("Cookie") {
		case "_ghbroker=alice":
			w.Header().Set("X-Auth-Request-User", "alice")
			w.Header().Set("X-Auth-Request-Email", "alice@example.com")
			w.Header().Set("X-Auth-Request-Groups", "acme,acme/sre")
			w.Header().Set("Authorization", "Bearer session-token")
			w.WriteHeader(http.StatusOK)
		case "_ghbroker=mallory":
			w.WriteHeader(http.StatusForbidden)
		default:
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer broker.Close()
	var upstreamHeaders http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamHeaders = r.Header.Clone()
		mu.Unlock()
		fmt.Fprint(w, "upstream")
	}))
	defer upstream.Close()

	dir := t.TempDir()
	port := freePort(t)
	snippet := strings.ReplaceAll(readText(t, nginxSnippetPath), nginxBrokerAddr, broker.URL)
	site := readText(t, nginxSitePath)
	for _, sub := range [][2]string{
		{nginxSnippetInclude, filepath.Join(dir, "ghbroker-auth.conf")},
		{"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", port)},
		{nginxUpstream, upstream.URL},
	} {
		if !strings.Contains(site, sub[0]) {
			t.Fatalf("%s no longer contains %q", nginxSitePath, sub[0])
		}
		site = strings.ReplaceAll(site, sub[0], sub[1])
	}
	mainConf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/example-site.conf;
}
`, dir)
	for name, content := range map[string]string{"ghbroker-auth.conf": snippet, "example-site.conf": site, "nginx.conf": mainConf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-p", dir, "-e", "stderr", "-c", filepath.Join(dir, "nginx.conf")}
	if out, err := exec.Command(nginx, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t refuses the documented files: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, nginx, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, func() string { return stderr.String() })

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(target, cookie string, extra ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+target, nil)
		req.Host = "app.tools.example.com"
		req.Header.Set("Accept", "text/html")
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		for i := 0; i+1 < len(extra); i += 2 {
			req.Header.Set(extra[i], extra[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// Signed out: 302 to sign-in with the original URL.
	resp := get("/dashboards/x", "", "X-Original-URL", "https://status.example.com/")
	wantLoc := nginxIssuer + "/login?rd=http://app.tools.example.com/dashboards/x"
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != wantLoc {
		t.Errorf("signed out: %d Location %q, want 302 %q", resp.StatusCode, resp.Header.Get("Location"), wantLoc)
	}
	mu.Lock()
	if len(calls) != 1 {
		t.Fatalf("the broker saw %d subrequests, want 1", len(calls))
	}
	c := calls[0]
	mu.Unlock()
	for k, v := range map[string]string{
		"X-Original-Uri":    "/dashboards/x",
		"X-Original-Method": "GET",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "app.tools.example.com",
		"X-Original-Url":    "",
		"Content-Length":    "",
	} {
		if got := c.Header.Get(k); got != v {
			t.Errorf("subrequest header %s = %q, want %q", k, got, v)
		}
	}
	if c.Path != "/authz-nginx" || c.Host != "app.tools.example.com" {
		t.Errorf("subrequest to %s with Host %s, want /authz-nginx with the original host", c.Path, c.Host)
	}

	// Allowed: the upstream gets the identity.
	resp = get("/", "_ghbroker=alice", "X-Auth-Request-User", "forged")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("allowed request: %d", resp.StatusCode)
	}
	mu.Lock()
	for k, v := range map[string]string{
		"X-Auth-Request-User":   "alice",
		"X-Auth-Request-Email":  "alice@example.com",
		"X-Auth-Request-Groups": "acme,acme/sre",
		"Authorization":         "Bearer session-token",
	} {
		if got := upstreamHeaders.Get(k); got != v {
			t.Errorf("upstream header %s = %q, want %q", k, got, v)
		}
	}
	mu.Unlock()

	// Forbidden: 403 from nginx, no redirect.
	if resp := get("/", "_ghbroker=mallory"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("forbidden request: %d, want 403", resp.StatusCode)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond for up to 30 seconds.
func waitFor(t *testing.T, cond func() bool, diag func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting\n%s", diag())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

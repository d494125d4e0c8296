//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/internal/githubfake"
)

// haClient is a browser-like client whose requests to the issuer go to the
// replica that pick chooses for the path (or through nginx when pick
// returns ""), keeping the issuer's Host.
type haClient struct {
	http   *http.Client
	issuer *url.URL
	pick   func(path string) string
}

func (c *haClient) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == c.issuer.Host {
		if addr := c.pick(r.URL.Path); addr != "" {
			r = r.Clone(r.Context())
			r.Host = c.issuer.Host
			r.URL.Host = addr
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func newHAClient(issuer string, pick func(string) string) *haClient {
	jar, _ := cookiejar.New(nil)
	c := &haClient{issuer: mustURL(issuer), pick: pick}
	c.http = &http.Client{Jar: jar, Transport: c, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c
}

// do sends one request and returns the response with its body read.
func (c *haClient) do(method, u string, form url.Values, hdr map[string]string) (*http.Response, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// follow GETs u and follows redirects until a non-redirect answer or a URL
// under stop; it returns the last response, its body and its URL.
func (c *haClient) follow(u, stop string) (*http.Response, string, string, error) {
	for range 12 {
		resp, body, err := c.do(http.MethodGet, u, nil, nil)
		if err != nil {
			return nil, "", u, err
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			return resp, body, u, nil
		}
		next, _ := url.Parse(u)
		nu, _ := next.Parse(loc)
		u = nu.String()
		if stop != "" && strings.HasPrefix(u, stop) {
			return resp, body, u, nil
		}
	}
	return nil, "", u, fmt.Errorf("redirect loop at %s", u)
}

// haBroker is a deployment of three `ghbroker serve` replicas on one etcd
// cluster, behind nginx (round robin), with the GitHub emulator.
type haBroker struct {
	issuer   string
	replicas []string // host:port of each serve
	procs    []*proc  // the serve processes, in the same order
	configs  []string
	etcd     *etcdCluster
}

const haClientSecret = "ha-rp-secret-0123456789abcdef012345"

// startHABroker starts the deployment: on "etcd", three replicas on a
// three-member cluster; on "bolt", one serve on a bbolt file (the
// baseline the benchmark compares with).
func startHABroker(t *testing.T, engine string) *haBroker {
	t.Helper()
	nginxPort := freePort(t)
	h := &haBroker{issuer: fmt.Sprintf("http://127.0.0.1:%d", nginxPort)}
	replicas := 1
	if engine == "etcd" {
		h.etcd = startEtcd(t, 3)
		replicas = 3
	}

	fx := githubfake.DefaultFixture()
	for i := range fx.Apps {
		fx.Apps[i].CallbackURL = h.issuer + "/callback"
	}
	gh := githubfake.New(fx, githubfake.Options{})
	gh.SetAutoApprove("alice")
	ghSrv := httptest.NewServer(gh)
	t.Cleanup(ghSrv.Close)

	var servers []string
	for range replicas {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		h.replicas = append(h.replicas, addr)
		servers = append(servers, "server "+addr+";")
		dir := t.TempDir()
		cfg := filepath.Join(dir, "config.yaml")
		storage := fmt.Sprintf("  bolt: {path: %s}", filepath.Join(dir, "ghbroker.db"))
		if h.etcd != nil {
			storage = fmt.Sprintf("  etcd:\n    endpoints: [%s]\n    dial_timeout: 5s\n    request_timeout: 3s", strings.Join(h.etcd.endpoints(), ", "))
		}
		os.WriteFile(cfg, []byte(fmt.Sprintf(`issuer: %s
listen: %q
log: {format: text, level: info}
storage:
%s
github:
  client_id: %s
  client_secret: %s
  url: %s
  api_url: %s/api/v3
  allowed_orgs: [acme]
session:
  allowed_redirect_domains: [127.0.0.1]
clients:
  - id: rp
    secret: %s
    gateway_access: true # its access tokens are checked at /authz below
    redirect_uris: [http://rp.localhost/cb]
    scopes: [openid, profile, email, groups, offline_access]
policy:
  default: authenticated
`, h.issuer, addr, storage, fx.Apps[0].ClientID, fx.Apps[0].ClientSecret,
			ghSrv.URL, ghSrv.URL, haClientSecret)), 0o600)
		h.configs = append(h.configs, cfg)
		h.procs = append(h.procs, start(t, "ghbroker serving", "serve", "--config", cfg))
	}
	runNginx(t, t.TempDir(), "127.0.0.1", nginxPort, map[string]string{"site.conf": fmt.Sprintf(`
upstream brokers {
    %s
}
server {
    listen 127.0.0.1:%d;
    location / {
        proxy_pass http://brokers;
        proxy_set_header Host $http_host;
        proxy_next_upstream error timeout;
    }
}
`, strings.Join(servers, "\n    "), nginxPort)})
	return h
}

// dumpLogs logs what the replicas logged at warn and above.
func (h *haBroker) dumpLogs(t *testing.T) {
	for i, p := range h.procs {
		for {
			select {
			case l := <-p.lines:
				if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
					t.Logf("replica %d: %s", i, l)
				}
				continue
			default:
			}
			break
		}
	}
}

// signIn runs /login?rd=ISSUER/ to the signed-in home page.
func (h *haBroker) signIn(c *haClient) error {
	resp, body, last, err := c.follow(h.issuer+"/login?rd="+url.QueryEscape(h.issuer+"/"), "")
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="signed-in"`) {
		return &statusError{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), where: last}
	}
	return nil
}

// cleanFailure reports whether an answer is how a request in flight on a
// lost part fails: 503 with Retry-After (etcd), nginx's 502 (the replica
// died under a POST), or the "start again" page of a /callback that nginx
// sent on to another replica after the first had already spent GitHub's
// code (nginx retries a GET whose upstream died).
func cleanFailure(se *statusError) bool {
	switch {
	case se.status == http.StatusServiceUnavailable && se.retryAfter != "":
		return true
	case se.status == http.StatusBadGateway:
		return true
	case se.status == http.StatusBadRequest && strings.Contains(se.where, "/callback"):
		return true
	}
	return false
}

// statusError is an answer other than the one wanted.
type statusError struct {
	status     int
	retryAfter string
	where      string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%d at %s (Retry-After %q)", e.status, e.where, e.retryAfter)
}

// tokens runs /authorize and /token for the rp client.
func (h *haBroker) tokens(c *haClient) (map[string]any, error) {
	q := url.Values{"response_type": {"code"}, "client_id": {"rp"}, "redirect_uri": {"http://rp.localhost/cb"},
		"scope": {"openid profile email groups offline_access"}, "state": {"s"}}
	resp, body, last, err := c.follow(h.issuer+"/authorize?"+q.Encode(), "http://rp.localhost/cb")
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(last, "http://rp.localhost/cb") {
		if resp.StatusCode != http.StatusOK {
			return nil, &statusError{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), where: last}
		}
		return nil, fmt.Errorf("authorize ended at %s: %d %s", last, resp.StatusCode, body)
	}
	code := mustURL(last).Query().Get("code")
	return h.token(c, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://rp.localhost/cb"}})
}

// token posts a grant to /token as rp.
func (h *haBroker) token(c *haClient, form url.Values) (map[string]any, error) {
	form.Set("client_id", "rp")
	form.Set("client_secret", haClientSecret)
	resp, body, err := c.do(http.MethodPost, h.issuer+"/token", form, nil)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	_ = json.Unmarshal([]byte(body), &out)
	if resp.StatusCode != http.StatusOK {
		return out, &statusError{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), where: "/token: " + body}
	}
	return out, nil
}

// byPath routes /login and /authorize to replica 0, /callback and /token
// to replica 1, everything else of the broker to replica 2.
func (h *haBroker) byPath(p string) string {
	switch {
	case strings.HasPrefix(p, "/login"), strings.HasPrefix(p, "/authorize"):
		return h.replicas[0]
	case strings.HasPrefix(p, "/callback"), strings.HasPrefix(p, "/token"):
		return h.replicas[1]
	}
	return h.replicas[2]
}

// TestHAReplicasOnEtcd runs three `ghbroker serve` replicas on a real
// three-member etcd cluster behind nginx (docs/ha.md): a sign-in and an OIDC
// flow that hop across replicas, a key rotation every replica serves within
// seconds, concurrent sign-ins that survive the SIGKILL of an etcd member
// and of a broker replica, 503 with
// Retry-After on quorum loss while checks and readiness keep answering,
// and recovery when the members come back.
func TestHAReplicasOnEtcd(t *testing.T) {
	h := startHABroker(t, "etcd")

	// /login at A, /callback at B, the home page at C.
	c := newHAClient(h.issuer, h.byPath)
	if err := h.signIn(c); err != nil {
		t.Fatalf("sign-in across replicas: %v", err)
	}
	// /authorize at A, /token at B, /userinfo at C.
	tok, err := h.tokens(c)
	if err != nil {
		t.Fatalf("code flow across replicas: %v", err)
	}
	at, _ := tok["access_token"].(string)
	resp, body, err := c.do(http.MethodGet, h.issuer+"/userinfo", nil, map[string]string{"Authorization": "Bearer " + at})
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(body, `"login":"alice"`) {
		t.Fatalf("/userinfo at replica C: %v %v %s", err, resp, body)
	}
	// A refresh at B rotates the family; the old token at B again is a
	// replay (the family is one record in etcd, whichever replica asks).
	rt, _ := tok["refresh_token"].(string)
	if _, err := h.token(c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := h.token(c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); err == nil {
		t.Fatal("a used refresh token was accepted again")
	}

	// keys rotate against etcd: every replica serves the new key.
	out, err := exec.Command(binary, "keys", "rotate", "--config", h.configs[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	var current string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "current" {
			current = f[1]
		}
	}
	began := time.Now()
	for _, r := range h.replicas {
		for {
			if slices.Contains(jwksKIDs(t, "http://"+r+"/keys"), current) {
				break
			}
			if time.Since(began) > 5*time.Second {
				t.Fatalf("replica %s does not publish the rotated key %s within 5s", r, current)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("every replica published the rotated key within %s", time.Since(began).Round(time.Millisecond))

	// Sign-ins and code flows through nginx, four at a time, while one
	// etcd member and then one broker replica are SIGKILLed. Every one
	// succeeds; a request that was in flight on a lost part may fail
	// cleanly once (503 with Retry-After, or nginx's 502 for a POST on the
	// killed replica) and is retried.
	rr := func(string) string { return "" }
	var done atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := range 6 {
				var err error
				for attempt := range 2 {
					b := newHAClient(h.issuer, rr)
					if err = h.signIn(b); err == nil {
						_, err = h.tokens(b)
					}
					se, ok := err.(*statusError)
					if err == nil || !ok || attempt == 1 || !cleanFailure(se) {
						break
					}
					t.Logf("worker %d, flow %d: %v while a part was lost; retrying", w, i, err)
				}
				if err != nil {
					errs <- fmt.Errorf("worker %d, flow %d: %w", w, i, err)
					return
				}
				done.Add(1)
			}
		})
	}
	for done.Load() < 4 {
		time.Sleep(10 * time.Millisecond)
	}
	h.etcd.kill(0)
	for done.Load() < 12 {
		time.Sleep(10 * time.Millisecond)
	}
	_ = h.procs[2].cmd.Process.Kill()
	h.replicas = h.replicas[:2]
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("with an etcd member and a broker replica lost: %v", err)
	}
	if t.Failed() || os.Getenv("HA_DUMP") != "" {
		h.dumpLogs(t)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d sign-ins and code flows completed across the losses", done.Load())

	// Quorum lost: token requests answer 503 with Retry-After within a
	// few seconds; readiness and the check keep answering.
	h.etcd.kill(1)
	for _, r := range h.replicas {
		one := newHAClient(h.issuer, func(string) string { return r })
		began := time.Now()
		_, err := h.token(one, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x.y"}})
		se, ok := err.(*statusError)
		if !ok || se.status != http.StatusServiceUnavailable || se.retryAfter == "" {
			t.Errorf("/token at %s without quorum: %v, want 503 with Retry-After", r, err)
		}
		if took := time.Since(began); took > 6*time.Second {
			t.Errorf("/token at %s took %s without quorum", r, took)
		}
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, _, err := one.do(http.MethodGet, h.issuer+p, nil, nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("%s at %s without quorum: %v %v", p, r, err, resp)
			}
		}
		resp, _, err := one.do(http.MethodGet, h.issuer+"/authz", nil, map[string]string{
			"Authorization": "Bearer " + at, "X-Forwarded-Host": "app.localhost", "X-Forwarded-Uri": "/",
			"X-Forwarded-Proto": "http", "X-Forwarded-Method": "GET",
		})
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("/authz at %s without quorum: %v %v", r, err, resp)
		}
	}

	// The members come back: sign-ins work again.
	h.etcd.run(0, "existing")
	h.etcd.run(1, "existing")
	deadline := time.Now().Add(30 * time.Second)
	for {
		b := newHAClient(h.issuer, rr)
		err := h.signIn(b)
		if err == nil {
			if _, err = h.tokens(b); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sign-in 30s after etcd regained quorum: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// jwksKIDs fetches a JWKS and returns its kids.
func jwksKIDs(t *testing.T, u string) []string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KID)
	}
	return out
}

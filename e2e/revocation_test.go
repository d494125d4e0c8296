//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ghbroker/ghbroker/internal/githubfake"
)

const (
	webhookSecret = "e2e-webhook-secret"
	rpSecret      = "e2e-rp-secret-0123456789abcdef0123456789"
)

// hiddenCSRF finds a form's CSRF token.
var hiddenCSRF = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

// revWorld is `ghbroker serve` (bbolt, a check listener, the revocation
// feed, GitHub webhooks) with the GitHub emulator in the test, and a
// `ghbroker authz` replica following the feed.
type revWorld struct {
	issuer, serveCheck, replicaCheck string
	serveConfig                      string
	gh                               *githubfake.Server
	hook                             *githubfake.Webhook
	fx                               *githubfake.Fixture
}

func startRevWorld(t *testing.T, replicaMode, backchannel string, recheck ...string) (*revWorld, *proc) {
	recheckEvery := "15m"
	if len(recheck) > 0 {
		recheckEvery = recheck[0]
	}
	t.Helper()
	port := freePort(t)
	w := &revWorld{issuer: fmt.Sprintf("http://ghbroker.localhost:%d", port)}
	w.fx = githubfake.DefaultFixture()
	for i := range w.fx.Apps {
		w.fx.Apps[i].CallbackURL = w.issuer + "/callback"
	}
	w.gh = githubfake.New(w.fx, githubfake.Options{})
	w.gh.SetAutoApprove("alice")
	ghSrv := httptest.NewServer(w.gh)
	t.Cleanup(ghSrv.Close)
	w.hook = &githubfake.Webhook{URL: fmt.Sprintf("http://127.0.0.1:%d/webhooks/github", port), Secret: webhookSecret}
	feed := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	w.serveCheck = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dir := t.TempDir()
	policy := `policy:
  rules:
    - hosts: [app.ghbroker.localhost]
      allow: {groups: [acme/sre]}
`
	serveCfg := filepath.Join(dir, "serve.yaml")
	os.WriteFile(serveCfg, []byte(fmt.Sprintf(`issuer: %s
listen: "127.0.0.1:%d"
log: {format: text}
revocations: {listen: %q}
authz: {listen: %q}
storage:
  bolt: {path: %s}
github:
  client_id: %s
  client_secret: %s
  url: %s
  api_url: %s/api/v3
  allowed_orgs: [acme]
  webhook_secret: %s
session:
  cookie_domain: .ghbroker.localhost
  allowed_redirect_domains: [.ghbroker.localhost]
  recheck_every: %s
clients:
  - id: rp
    secret: %s
    redirect_uris: [http://localhost:3000/cb]
    backchannel_logout_uri: %s
%s`, w.issuer, port, feed, w.serveCheck, filepath.Join(dir, "ghbroker.db"), w.fx.Apps[0].ClientID, w.fx.Apps[0].ClientSecret,
		ghSrv.URL, ghSrv.URL, webhookSecret, recheckEvery, rpSecret, backchannel, policy)), 0o600)
	w.serveConfig = serveCfg
	broker := start(t, "ghbroker serving", "serve", "--config", serveCfg)

	w.replicaCheck = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	replicaListen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	replicaCfg := filepath.Join(dir, "replica.yaml")
	os.WriteFile(replicaCfg, []byte(fmt.Sprintf(`listen: %q
log: {format: text}
authz:
  listen: %q
  revocations: {url: "http://%s/revocations", mode: %s, max_stale: 2s}
session:
  cookie_domain: .ghbroker.localhost
  allowed_redirect_domains: [.ghbroker.localhost]
%s`, replicaListen, w.replicaCheck, feed, replicaMode, policy)), 0o600)
	start(t, "authz replica serving", "authz", "--issuer", w.issuer, "--jwks-url", fmt.Sprintf("http://127.0.0.1:%d/keys", port), "--config", replicaCfg)
	waitReady(t, "http://"+replicaListen+"/readyz")
	return w, broker
}

// check asks a check listener about app.ghbroker.localhost with the client's
// session cookie and returns the status.
func (w *revWorld) check(t *testing.T, addr string, c *client) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/dashboards/1", nil)
	req.Host = "app.ghbroker.localhost"
	req.Header.Set("X-Forwarded-Proto", "https")
	for _, ck := range c.http.Jar.Cookies(mustURL(w.issuer + "/")) {
		req.AddCookie(ck)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// refusedWithin waits until both checks refuse c and returns how long
// that took.
func (w *revWorld) refusedWithin(t *testing.T, c *client, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	served, replicated := time.Duration(0), time.Duration(0)
	for time.Since(start) < limit {
		if served == 0 && w.check(t, w.serveCheck, c) != http.StatusOK {
			served = time.Since(start)
		}
		if replicated == 0 && w.check(t, w.replicaCheck, c) != http.StatusOK {
			replicated = time.Since(start)
		}
		if served > 0 && replicated > 0 {
			return max(served, replicated)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not refused within %s (serve after %s, replica after %s)", limit, served, replicated)
	return 0
}

// setTeam puts alice in or out of acme/sre on the emulator.
func (w *revWorld) setTeam(t *testing.T, in bool) {
	t.Helper()
	fx := githubfake.DefaultFixture()
	for i := range fx.Apps {
		fx.Apps[i].CallbackURL = w.issuer + "/callback"
	}
	for i := range fx.Orgs {
		for j := range fx.Orgs[i].Teams {
			tm := &fx.Orgs[i].Teams[j]
			if fx.Orgs[i].Login == "acme" && tm.Slug == "sre" {
				tm.Members = slices.DeleteFunc(tm.Members, func(m string) bool { return m == "alice" })
				if in {
					tm.Members = append(tm.Members, "alice")
				}
			}
		}
	}
	w.gh.SetFixture(fx)
}

// TestRevocationReachesEveryCheck: a signed membership webhook, a sign-out
// and an expired-then-renewed session, end to end with the built binaries:
// the token is refused at serve's check and at a `ghbroker authz` replica
// within 2 s, over several trials, and a browser refused after a team
// change is renewed silently (no GitHub sign-in) without the team.
func TestRevocationReachesEveryCheck(t *testing.T) {
	w, _ := startRevWorld(t, "best_effort", "http://127.0.0.1:9/unused")
	ctx := context.Background()
	var took []time.Duration
	for trial := range 5 {
		w.setTeam(t, true)
		c := newClient(t)
		c.signIn(t, w.issuer, "alice")
		if s, r := w.check(t, w.serveCheck, c), w.check(t, w.replicaCheck, c); s != http.StatusOK || r != http.StatusOK {
			t.Fatalf("trial %d: signed in, serve %d, replica %d", trial, s, r)
		}
		w.setTeam(t, false)
		p, err := w.gh.MembershipPayload("removed", "acme", "sre", "alice")
		if err != nil {
			t.Fatal(err)
		}
		status, _, err := w.hook.Send(ctx, "membership", p)
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("trial %d: webhook: %d %v", trial, status, err)
		}
		took = append(took, w.refusedWithin(t, c, 2*time.Second))

		if trial == 0 {
			// Silent renewal: /login re-reads GitHub with the stored token
			// and mints a token without the team, never showing GitHub.
			resp, body := c.get(t, w.issuer+"/login?rd="+url.QueryEscape(w.issuer+"/"))
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusFound || strings.Contains(loc, "/login/oauth/authorize") {
				t.Fatalf("renewal after the webhook: %d %s\n%s", resp.StatusCode, loc, body)
			}
			if s := w.check(t, w.serveCheck, c); s != http.StatusForbidden {
				t.Errorf("renewed without the team: serve answers %d, want 403", s)
			}
		}
	}
	slices.Sort(took)
	t.Logf("webhook → refused at serve and at the replica, %d trials: median %s, max %s", len(took), took[len(took)/2], took[len(took)-1])

	// Sign-out on one tool: every check refuses the copied cookie.
	w.setTeam(t, true)
	c := newClient(t)
	c.signIn(t, w.issuer, "alice")
	copied := newClient(t)
	copied.http.Jar.SetCookies(mustURL(w.issuer+"/"), c.http.Jar.Cookies(mustURL(w.issuer+"/")))
	_, body := c.get(t, w.issuer+"/logout")
	m := hiddenCSRF.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no sign-out confirmation:\n%s", body)
	}
	req, _ := http.NewRequest(http.MethodPost, w.issuer+"/logout", strings.NewReader(url.Values{"csrf": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %v %v", resp, err)
	}
	resp.Body.Close()
	t.Logf("sign-out → refused everywhere after %s", w.refusedWithin(t, copied, 2*time.Second))

	// An operator's revoke, while serve runs (through its admin socket).
	c = newClient(t)
	c.signIn(t, w.issuer, "alice")
	list, err := exec.Command(binary, "sessions", "list", "--config", w.serveConfig, "--user", "alice").CombinedOutput()
	if err != nil || !strings.Contains(string(list), "alice") {
		t.Fatalf("sessions list: %v\n%s", err, list)
	}
	revoke := time.Now()
	out, err := exec.Command(binary, "sessions", "revoke", "--config", w.serveConfig, "--user", "alice").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "by the running server") {
		t.Fatalf("sessions revoke: %v\n%s", err, out)
	}
	w.refusedWithin(t, c, 2*time.Second)
	t.Logf("sessions revoke → refused everywhere %s after the command started", time.Since(revoke))
}

// TestReplicaModesWhileTheBrokerIsDown: with the broker stopped, a
// best_effort replica keeps deciding with the last set it received (a
// revoked token stays refused, a good one stays allowed); a strict one
// refuses session tokens once its set is older than max_stale.
func TestReplicaModesWhileTheBrokerIsDown(t *testing.T) {
	for _, mode := range []string{"best_effort", "strict"} {
		t.Run(mode, func(t *testing.T) {
			w, broker := startRevWorld(t, mode, "http://127.0.0.1:9/unused")
			good, revoked := newClient(t), newClient(t)
			good.signIn(t, w.issuer, "alice")
			revoked.signIn(t, w.issuer, "alice")
			_, body := revoked.get(t, w.issuer+"/logout")
			m := hiddenCSRF.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("no sign-out confirmation:\n%s", body)
			}
			copied := newClient(t)
			copied.http.Jar.SetCookies(mustURL(w.issuer+"/"), revoked.http.Jar.Cookies(mustURL(w.issuer+"/")))
			req, _ := http.NewRequest(http.MethodPost, w.issuer+"/logout", strings.NewReader(url.Values{"csrf": {m[1]}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if resp, err := revoked.http.Do(req); err != nil {
				t.Fatal(err)
			} else {
				resp.Body.Close()
			}
			w.refusedWithin(t, copied, 2*time.Second)

			_ = broker.cmd.Process.Kill()
			_ = broker.cmd.Wait()
			time.Sleep(2500 * time.Millisecond) // past max_stale (2s)
			goodStatus, revokedStatus := w.check(t, w.replicaCheck, good), w.check(t, w.replicaCheck, copied)
			switch mode {
			case "best_effort":
				if goodStatus != http.StatusOK || revokedStatus == http.StatusOK {
					t.Errorf("best_effort with the broker down: good %d, revoked %d", goodStatus, revokedStatus)
				}
			case "strict":
				if goodStatus == http.StatusOK || revokedStatus == http.StatusOK {
					t.Errorf("strict with a stale set: good %d, revoked %d; want both refused", goodStatus, revokedStatus)
				}
			}
		})
	}
}

// TestBackchannelLogoutEndToEnd: a relying party with a
// backchannel_logout_uri receives a logout token when its user signs out,
// and verifies it against the broker's JWKS with go-oidc.
func TestBackchannelLogoutEndToEnd(t *testing.T) {
	got := make(chan map[string]any, 4)
	var issuer string
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := oidc.ClientContext(r.Context(), loopbackClient())
		raw, err := oidc.NewRemoteKeySet(ctx, issuer+"/keys").VerifySignature(ctx, r.PostFormValue("logout_token"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var c map[string]any
		_ = json.Unmarshal(raw, &c)
		got <- c
	}))
	defer rp.Close()
	w, _ := startRevWorld(t, "best_effort", rp.URL+"/backchannel")
	issuer = w.issuer
	b := newClient(t)
	b.signIn(t, w.issuer, "alice")
	codeFlowRP(t, oauth2.Config{
		ClientID: "rp", ClientSecret: rpSecret, RedirectURL: "http://localhost:3000/cb",
		Endpoint: oauth2.Endpoint{AuthURL: w.issuer + "/authorize", TokenURL: w.issuer + "/token"},
		Scopes:   []string{"openid"},
	}, b)
	_, body := b.get(t, w.issuer+"/logout")
	m := hiddenCSRF.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no sign-out confirmation:\n%s", body)
	}
	req, _ := http.NewRequest(http.MethodPost, w.issuer+"/logout", strings.NewReader(url.Values{"csrf": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case c := <-got:
		events, _ := c["events"].(map[string]any)
		if _, ok := events["http://schemas.openid.net/event/backchannel-logout"]; !ok || c["iss"] != w.issuer || c["sid"] == nil || c["sub"] == nil || c["nonce"] != nil {
			t.Errorf("logout token %v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no logout token within 10 s")
	}
}

// TestRecheckWithoutWebhooks: with no webhook, session.recheck_every
// (here its minimum, 10 s) notices a team removal on GitHub and every
// check refuses the old token within the period.
func TestRecheckWithoutWebhooks(t *testing.T) {
	w, _ := startRevWorld(t, "best_effort", "http://127.0.0.1:9/unused", "10s")
	w.setTeam(t, true)
	c := newClient(t)
	c.signIn(t, w.issuer, "alice")
	if s := w.check(t, w.replicaCheck, c); s != http.StatusOK {
		t.Fatalf("signed in: replica %d", s)
	}
	w.setTeam(t, false) // on GitHub only: no webhook
	took := w.refusedWithin(t, c, 25*time.Second)
	t.Logf("team removal noticed by the recheck and refused everywhere after %s", took)
}

package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/internal/githubfake"
)

func TestSignInAcrossSubdomains(t *testing.T) {
	w := newWorld(t, worldOptions{})
	b := w.browser()
	grafana := "http://grafana.example.test:" + w.port + "/d/abc?orgId=1"

	landed := b.signIn(grafana)
	if landed != grafana {
		t.Fatalf("landed on %s, want %s", landed, grafana)
	}

	// The SSO cookie is on the parent domain: a second subdomain sees it,
	// the renewal cookie stays on the broker's host.
	kibana := "http://kibana.example.test:" + w.port + "/"
	kc := b.cookies(kibana)
	if kc["_ghbroker"] == "" {
		t.Fatalf("kibana does not receive the SSO cookie: %v", kc)
	}
	if _, leaked := kc["_ghbroker_sid"]; leaked {
		t.Error("the renewal cookie is sent to other services")
	}
	if b.cookies(w.issuer + "/")["_ghbroker_sid"] == "" {
		t.Error("no renewal cookie on the broker host")
	}

	// authz-side verification accepts the cookie.
	c, err := w.verifier.Verify(b.sessionToken(kibana), claims.KindSession)
	if err != nil {
		t.Fatalf("the session cookie does not verify: %v", err)
	}
	if c.PreferredUsername != "alice" || !c.InGroup("acme") || !c.InGroup("acme/sre") {
		t.Errorf("claims %+v", c)
	}
	if c.InGroup("globex") {
		t.Error("groups of an org outside allowed_orgs leaked into the token")
	}

	// The home page shows the user's teams.
	resp, body := b.get(w.issuer + "/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="signed-in"`) || !strings.Contains(body, "acme/sre") {
		t.Fatalf("home: %d\n%s", resp.StatusCode, body)
	}

	// Logout asks first, then clears every cookie and ends the session.
	resp, body = b.get(w.issuer + "/logout?rd=" + url.QueryEscape(kibana))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="confirm-logout"`) {
		t.Fatalf("logout without confirmation: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := w.store.GetSession(t.Context(), c.SessionID); err != nil {
		t.Fatalf("the confirmation page ended the session: %v", err)
	}
	resp, _ = b.confirmLogout(body)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != kibana {
		t.Fatalf("logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if kc := b.cookies(kibana); len(kc) != 0 {
		t.Errorf("cookies left after logout: %v", kc)
	}
	// The record stays only for offline_access refresh tokens: signed out,
	// without its renewal secret.
	if s, err := w.store.GetSession(t.Context(), c.SessionID); err == nil && (s.SignedOut.IsZero() || s.SecretHash != "") {
		t.Error("the server-side session survived logout")
	}
	_, body = b.get(w.issuer + "/")
	if !strings.Contains(body, `id="signed-out"`) {
		t.Errorf("home after logout is not the signed-out page:\n%s", body)
	}
}

func TestOutsideAllowedOrgsIsRefused(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.gh.SetAutoApprove("erin") // in no org
	b := w.browser()
	resp, body, _ := b.follow(w.issuer+"/login?rd=/", nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not in an allowed organization") || !strings.Contains(body, "acme") {
		t.Fatalf("%d\n%s", resp.StatusCode, body)
	}
	if b.cookies(w.issuer + "/")["_ghbroker"] != "" {
		t.Error("a refused user got a session cookie")
	}
}

func TestOAuthAppRestrictedOrg(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.gh.SetOrgRestricted("acme", true)
	b := w.browser()
	resp, body, _ := b.follow(w.issuer+"/login?rd=/", nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "has not approved ghbroker") ||
		!strings.Contains(body, "/organizations/acme/settings/oauth_application_policy") {
		t.Fatalf("%d\n%s", resp.StatusCode, body)
	}
}

// callbackURL starts a sign-in and stops at the broker's /callback,
// returning its URL (with GitHub's code and our state).
func (b *browser) callbackURL() string {
	b.w.t.Helper()
	_, _, u := b.follow(b.w.issuer+"/login?rd=/", func(u string) bool { return strings.Contains(u, "/callback?") })
	if !strings.Contains(u, "/callback?") {
		b.w.t.Fatalf("never reached the callback: %s", u)
	}
	return u
}

func TestReplayedStateAndCode(t *testing.T) {
	w := newWorld(t, worldOptions{})
	b := w.browser()
	cb := b.callbackURL()
	if resp, _, _ := b.follow(cb, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("first callback: %d", resp.StatusCode)
	}
	// The same state again: single use.
	resp, body := b.get(cb)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "expired or was already used") {
		t.Fatalf("replayed state: %d\n%s", resp.StatusCode, body)
	}
	// A fresh state with the old GitHub code: GitHub refuses the code.
	b = w.browser()
	fresh, _ := url.Parse(b.callbackURL())
	old, _ := url.Parse(cb)
	q := fresh.Query()
	q.Set("code", old.Query().Get("code"))
	fresh.RawQuery = q.Encode()
	resp, body = b.get(fresh.String())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "bad_verification_code") {
		t.Fatalf("replayed code: %d\n%s", resp.StatusCode, body)
	}
	// A state from another browser is refused.
	other := w.browser()
	resp, body = other.get(b.callbackURL())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "another browser") {
		t.Fatalf("foreign browser: %d\n%s", resp.StatusCode, body)
	}
}

func TestCancelledAtGitHub(t *testing.T) {
	w := newWorld(t, worldOptions{})
	b := w.browser()
	cb, _ := url.Parse(b.callbackURL())
	q := url.Values{"state": {cb.Query().Get("state")}, "error": {"access_denied"}}
	resp, body := b.get(w.issuer + "/callback?" + q.Encode())
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "cancelled") {
		t.Fatalf("%d\n%s", resp.StatusCode, body)
	}
}

func TestGitHubDownOrRateLimited(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults githubfake.Faults
		want   string
	}{
		{"5xx", githubfake.Faults{ServerError: true}, "GitHub is unavailable"},
		{"rate limited", githubfake.Faults{RateLimited: true}, "rate-limiting"},
		{"secondary rate limit", githubfake.Faults{SecondaryRateLimit: true}, "rate-limiting"},
		{"bad JSON", githubfake.Faults{BadJSON: true}, "unexpected answer"},
		{"huge body", githubfake.Faults{HugeBody: true}, "unexpected answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			first := w.browser()
			first.signIn("/")
			sid := first.cookies(w.issuer + "/")["_ghbroker_sid"]

			w.gh.SetFaults(tc.faults)
			b := w.browser()
			resp, body, _ := b.follow(w.issuer+"/login?rd=/", nil)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, tc.want) {
				t.Fatalf("%d Retry-After=%q\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
			reqID := resp.Header.Get("X-Request-Id")
			if reqID == "" || !strings.Contains(body, reqID) || !strings.Contains(w.logsString(), reqID) {
				t.Errorf("request id %q not on the page and in the logs", reqID)
			}
			// The existing session is untouched.
			id, _, _ := strings.Cut(sid, ".")
			if _, err := w.store.GetSession(t.Context(), id); err != nil {
				t.Errorf("existing session lost: %v", err)
			}
			if _, err := w.verifier.Verify(first.sessionToken(w.issuer+"/"), claims.KindSession); err != nil {
				t.Errorf("existing session token no longer verifies: %v", err)
			}
		})
	}
}

func (w *world) logsString() string {
	logMu.Lock()
	defer logMu.Unlock()
	return w.logs.String()
}

func TestSilentRenewal(t *testing.T) {
	w := newWorld(t, worldOptions{})
	b := w.browser()
	b.signIn("/")
	app := "http://app.example.test:" + w.port + "/"

	// The session token expires; the server-side session lives on.
	w.clock.Advance(2 * time.Hour)
	if _, err := w.verifier.Verify(b.sessionToken(app), claims.KindSession); err == nil {
		t.Fatal("token should have expired")
	}
	w.gh.ResetCalls()
	resp, _ := b.get(w.issuer + "/login?rd=" + url.QueryEscape(app))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != app {
		t.Fatalf("renewal did not go straight back: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := w.gh.Calls()["GET /login/oauth/authorize"]; n != 0 {
		t.Errorf("renewal showed GitHub's authorize page %d times", n)
	}
	if w.gh.Calls()["GET /user/teams"] == 0 {
		t.Error("renewal did not re-read memberships")
	}
	if _, err := w.verifier.Verify(b.sessionToken(app), claims.KindSession); err != nil {
		t.Fatalf("renewed token does not verify: %v", err)
	}

	// Removed from the org on GitHub: the next renewal revokes the session.
	fx := githubfake.DefaultFixture()
	fx.RemoveMember("acme", "alice")
	for i := range fx.Apps {
		fx.Apps[i].CallbackURL = w.issuer + "/callback"
	}
	w.gh.SetFixture(fx)
	w.clock.Advance(2 * time.Hour)
	resp, body := b.get(w.issuer + "/login?rd=" + url.QueryEscape(app))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not in an allowed organization") {
		t.Fatalf("removed user: %d\n%s", resp.StatusCode, body)
	}
	if b.cookies(w.issuer + "/")["_ghbroker_sid"] != "" {
		t.Error("renewal cookie kept after revocation")
	}
}

// TestUserInManyTeams: 300 teams still sign in, every cookie stays under
// 4,096 bytes, and the authz verifier accepts the cookie.
func TestUserInManyTeams(t *testing.T) {
	fx := githubfake.ManyTeams("acme", 300, "many")
	w := newWorld(t, worldOptions{fixture: fx, policyGroups: []string{"acme/team-007"}})
	w.gh.SetAutoApprove("many")
	b := w.browser()
	b.signIn("/")
	app := "http://app.example.test:" + w.port + "/"
	for name, v := range b.cookies(app) {
		if len(name)+len(v) > 4000 {
			t.Errorf("cookie %s is %d bytes", name, len(name)+len(v))
		}
	}
	c, err := w.verifier.Verify(b.sessionToken(app), claims.KindSession)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !c.InGroup("acme") || !c.InGroup("acme/team-007") {
		t.Errorf("the org and the policy's team must stay in a trimmed token: %v", c.Groups)
	}
	// The home page still lists every team from the stored session.
	_, body := b.get(w.issuer + "/")
	if n := strings.Count(body, `class="team"`); n != 300 {
		t.Errorf("home lists %d teams, want 300", n)
	}
}

// TestTamperedCookiesAreSignedOut: forged, truncated or stale cookies and
// states read as signed out, never as an error.
func TestTamperedCookiesAreSignedOut(t *testing.T) {
	w := newWorld(t, worldOptions{})
	b := w.browser()
	b.signIn("/")
	good := b.sessionToken(w.issuer + "/")
	for name, cookie := range map[string]string{
		"garbage":          "_ghbroker=garbage",
		"truncated":        "_ghbroker=" + good[:len(good)-10],
		"flipped":          "_ghbroker=" + good[:len(good)-2] + "AA",
		"chunk gap":        "_ghbroker.0=" + good[:100] + "; _ghbroker.2=" + good[100:],
		"chunks reordered": "_ghbroker.0=" + good[100:] + "; _ghbroker.1=" + good[:100],
		"forged sid":       "_ghbroker_sid=abc.def",
		"sid without dot":  "_ghbroker_sid=abcdef",
	} {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"/", "/login?rd=/", "/callback?state=x&code=y", "/logout"} {
				req, _ := http.NewRequest(http.MethodGet, w.issuer+path, nil)
				req.Header.Set("Cookie", cookie)
				resp, err := w.browser().client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					t.Errorf("%s with %s: %d", path, name, resp.StatusCode)
				}
				if path == "/" && resp.StatusCode != http.StatusOK {
					t.Errorf("home with %s: %d, want the signed-out page", name, resp.StatusCode)
				}
			}
		})
	}
}

// TestLargeSessionTokenIsChunked: when the policy names every one of a
// user's 300 teams, the token cannot be trimmed below one cookie: it is
// split into chunks, each under 4,096 bytes, that the verifier joins.
func TestLargeSessionTokenIsChunked(t *testing.T) {
	fx := githubfake.ManyTeams("acme", 300, "many")
	w := newWorld(t, worldOptions{fixture: fx, policyGroups: teamGroups(fx)})
	b := w.browser()
	b.signIn("/")
	app := "http://app.example.test:" + w.port + "/"
	cookies := b.cookies(app)
	if _, single := cookies["_ghbroker"]; single || cookies["_ghbroker.1"] == "" {
		t.Fatalf("expected a chunked cookie, got %d cookies", len(cookies))
	}
	for name, v := range cookies {
		if len(name)+len(v) > 4000 {
			t.Errorf("cookie %s is %d bytes", name, len(name)+len(v))
		}
	}
	c, err := w.verifier.Verify(b.sessionToken(app), claims.KindSession)
	if err != nil {
		t.Fatalf("the joined chunks do not verify: %v", err)
	}
	if !c.InGroup("acme/team-300") {
		t.Errorf("a team the policy names is missing: %d groups", len(c.Groups))
	}

	// A second sign-in rewrites the chunks consistently.
	b.signIn("/")
	if _, err := w.verifier.Verify(b.sessionToken(app), claims.KindSession); err != nil {
		t.Fatalf("after a second sign-in: %v", err)
	}
}

// TestOversizedSessionTokenKeepsOrgs: past the verifier's size limit the
// token keeps the org groups only, and the user still signs in.
func TestOversizedSessionTokenKeepsOrgs(t *testing.T) {
	fx := githubfake.ManyTeams("acme", 1200, "many")
	w := newWorld(t, worldOptions{fixture: fx, policyGroups: teamGroups(fx)})
	b := w.browser()
	b.signIn("/")
	c, err := w.verifier.Verify(b.sessionToken(w.issuer+"/"), claims.KindSession)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(c.Groups) != 1 || c.Groups[0] != "acme" {
		t.Errorf("groups %d, want only the org", len(c.Groups))
	}
}

// teamGroups names every team of the fixture's first org as a group, as a
// policy that mentions all of them would.
func teamGroups(fx *githubfake.Fixture) []string {
	var out []string
	for _, tm := range fx.Orgs[0].Teams {
		out = append(out, fx.Orgs[0].Login+"/"+tm.Slug)
	}
	return out
}

// TestSAMLSSOEnforcedOrg: a member of an org that enforces SAML SSO, whose
// token is not yet authorized for it, is told to authorize it and given
// GitHub's link, not "not a member"; after authorizing, sign-in works.
func TestSAMLSSOEnforcedOrg(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.gh.SetOrgSAMLSSO("acme", true)
	b := w.browser()
	resp, body, _ := b.follow(w.issuer+"/login?rd=/", nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "SAML single sign-on") ||
		strings.Contains(body, "not in an allowed organization") ||
		!strings.Contains(body, `href="`+w.ghSrv.URL+"/orgs/acme/sso?authorization_request=") {
		t.Fatalf("%d\n%s", resp.StatusCode, body)
	}
	if b.cookies(w.issuer + "/")["_ghbroker"] != "" {
		t.Error("a refused user got a session cookie")
	}
	w.gh.SetOrgSAMLSSO("acme", false)
	if got := b.signIn("/"); got != w.issuer+"/" {
		t.Errorf("sign-in after SSO authorization ended at %s", got)
	}
}

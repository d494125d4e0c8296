package broker_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ghbroker/ghbroker/internal/githubfake"
)

type idClaims struct {
	Sub               string   `json:"sub"`
	AuthTime          int64    `json:"auth_time"`
	Nonce             string   `json:"nonce"`
	AZP               string   `json:"azp"`
	PreferredUsername string   `json:"preferred_username"`
	Name              string   `json:"name"`
	Email             string   `json:"email"`
	EmailVerified     bool     `json:"email_verified"`
	Groups            []string `json:"groups"`
	SID               string   `json:"sid"`
}

// codeFlow signs alice in and runs the code flow with PKCE and a nonce for
// the relying party p; it returns the token and the verified ID token.
func (p *rp) codeFlow(b *browser, extra ...oauth2.AuthCodeOption) (*oauth2.Token, *oidc.IDToken, idClaims) {
	p.w.t.Helper()
	verifier := oauth2.GenerateVerifier()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-0S6_WzA2Mj")}, extra...)
	q := p.authorize(b, opts...)
	if q.Get("error") != "" {
		p.w.t.Fatalf("authorize error: %s %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != "st-123" || q.Get("iss") != p.w.issuer {
		p.w.t.Fatalf("state %q iss %q not echoed", q.Get("state"), q.Get("iss"))
	}
	if len(q.Get("code")) < 22 {
		p.w.t.Fatalf("code %q carries less than 128 bits", q.Get("code"))
	}
	tok, err := p.conf.Exchange(p.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		p.w.t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.verifier.Verify(p.ctx, raw)
	if err != nil {
		p.w.t.Fatalf("go-oidc refused the ID token: %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		p.w.t.Fatal(err)
	}
	return tok, idt, c
}

// TestCodeFlow covers oidcc-server, oidcc-userinfo-get/-post-header/
// -post-body, oidcc-refresh-token and the rest of the happy path with
// go-oidc and x/oauth2 as the relying party.
func TestCodeFlow(t *testing.T) {
	w := oidcWorld(t)
	b := w.browser()
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	tok, idt, c := p.codeFlow(b)

	if c.Nonce != "n-0S6_WzA2Mj" || c.AZP != "grafana" || c.AuthTime == 0 || c.SID == "" {
		t.Errorf("ID token claims %+v", c)
	}
	if c.Sub != "1001" || c.PreferredUsername != "alice" || c.Email != "alice@example.com" || !c.EmailVerified {
		t.Errorf("identity claims %+v", c)
	}
	if !slices.Contains(c.Groups, "acme/sre") || slices.Contains(c.Groups, "globex") {
		t.Errorf("groups %v", c.Groups)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	if !strings.EqualFold(tok.TokenType, "bearer") || tok.RefreshToken == "" || tok.Expiry.IsZero() {
		t.Errorf("token %+v", tok)
	}

	// UserInfo: GET (go-oidc), POST with the header, POST with the body.
	ui, err := p.provider.UserInfo(p.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo GET: %v", err)
	}
	var uc map[string]any
	_ = ui.Claims(&uc)
	if ui.Subject != idt.Subject || uc["login"] != "alice" || uc["preferred_username"] != "alice" {
		t.Errorf("userinfo %v", uc)
	}
	if g, _ := uc["groups"].([]any); len(g) == 0 {
		t.Errorf("userinfo lacks groups: %v", uc)
	}
	for _, style := range []string{"post-header", "post-body"} {
		form := url.Values{}
		req, _ := http.NewRequest(http.MethodPost, w.issuer+"/userinfo", nil)
		if style == "post-header" {
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		} else {
			form.Set("access_token", tok.AccessToken)
		}
		req.Body = http.NoBody
		if len(form) > 0 {
			req, _ = http.NewRequest(http.MethodPost, w.issuer+"/userinfo", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := w.browser().client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("userinfo %s: %d", style, resp.StatusCode)
		}
	}

	// Refresh: new tokens, same iss/sub/aud; memberships re-read.
	w.gh.ResetCalls()
	old := *tok
	old.Expiry = time.Now().Add(-time.Minute)
	fresh, err := p.conf.TokenSource(p.ctx, &old).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken {
		t.Error("refresh did not rotate the tokens")
	}
	if w.gh.Calls()["GET /user/teams"] == 0 {
		t.Error("refresh did not re-read memberships from GitHub")
	}
	idt2, err := p.verifier.Verify(p.ctx, fresh.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("refreshed ID token: %v", err)
	}
	if idt2.Subject != idt.Subject || idt2.Issuer != idt.Issuer || !slices.Equal(idt2.Audience, idt.Audience) {
		t.Error("refreshed ID token is inconsistent with the first")
	}

	// Introspection of the live refresh token, then revocation.
	status, in, _ := w.post("/introspect", url.Values{"token": {fresh.RefreshToken}}, "grafana", rpSecret)
	if status != 200 || in["active"] != true {
		t.Errorf("introspect refresh: %d %v", status, in)
	}
	status, in, _ = w.post("/introspect", url.Values{"token": {fresh.AccessToken}}, "grafana", rpSecret)
	if status != 200 || in["active"] != true || in["username"] != "alice" || in["client_id"] != "grafana" {
		t.Errorf("introspect access: %d %v", status, in)
	}
	if status, _, _ := w.post("/revoke", url.Values{"token": {fresh.RefreshToken}, "token_type_hint": {"refresh_token"}}, "grafana", rpSecret); status != 200 {
		t.Errorf("revoke: %d", status)
	}
	status, in, _ = w.post("/introspect", url.Values{"token": {fresh.RefreshToken}}, "grafana", rpSecret)
	if status != 200 || len(in) != 1 || in["active"] != false {
		t.Errorf("introspect after revoke: %d %v, want exactly {active:false}", status, in)
	}
	expired := *fresh
	expired.Expiry = time.Now().Add(-time.Minute)
	if _, err := p.conf.TokenSource(p.ctx, &expired).Token(); !isOAuthError(err, "invalid_grant") {
		t.Errorf("refresh after revocation: %v", err)
	}
	// Unknown tokens: 200 and inactive.
	if status, _, _ := w.post("/revoke", url.Values{"token": {"nonsense"}}, "grafana", rpSecret); status != 200 {
		t.Errorf("revoke unknown: %d", status)
	}
}

func isOAuthError(err error, code string) bool {
	re, ok := err.(*oauth2.RetrieveError)
	return ok && re.ErrorCode == code
}

// TestRefreshTokenReuseRevokesFamily: presenting an old refresh token
// revokes the family, so the newest token fails too.
func TestRefreshTokenReuseRevokesFamily(t *testing.T) {
	w := oidcWorld(t)
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	tok, _, _ := p.codeFlow(w.browser())
	first := tok.RefreshToken
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first}}
	status, second, _ := w.tokenRequest(f, "grafana", rpSecret)
	if status != 200 {
		t.Fatalf("first refresh: %d %v", status, second)
	}
	if status, body, _ := w.tokenRequest(f, "grafana", rpSecret); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("replayed refresh token: %d %v", status, body)
	}
	f.Set("refresh_token", second["refresh_token"].(string))
	if status, body, _ := w.tokenRequest(f, "grafana", rpSecret); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("the family survived a replay: %d %v", status, body)
	}
}

// TestRefreshTokenOtherClient is oidcc-refresh-token's cross-client check.
func TestRefreshTokenOtherClient(t *testing.T) {
	w := oidcWorld(t)
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	tok, _, _ := p.codeFlow(w.browser())
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
	if status, body, _ := w.tokenRequest(f, "other", "other-secret-0123456789abcdef01234"); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("%d %v", status, body)
	}
	// The rightful client can still use it.
	if status, body, _ := w.tokenRequest(f, "grafana", rpSecret); status != 200 {
		t.Fatalf("rightful refresh after a foreign attempt: %d %v", status, body)
	}
}

// TestRefreshFailsAfterLeavingOrg: memberships are re-read at refresh.
func TestRefreshFailsAfterLeavingOrg(t *testing.T) {
	w := oidcWorld(t)
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	tok, _, _ := p.codeFlow(w.browser())
	fx := githubfake.DefaultFixture()
	fx.RemoveMember("acme", "alice")
	for i := range fx.Apps {
		fx.Apps[i].CallbackURL = w.issuer + "/callback"
	}
	w.gh.SetFixture(fx)
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
	if status, body, _ := w.tokenRequest(f, "grafana", rpSecret); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("%d %v", status, body)
	}
}

// TestClientSecretPost is oidcc-server-client-secret-post.
func TestClientSecretPost(t *testing.T) {
	w := oidcWorld(t)
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInParams)
	p.codeFlow(w.browser())
}

// TestCodeReuse is oidcc-codereuse and oidcc-codereuse-30seconds: the
// second use fails and revokes the refresh family of the first.
func TestCodeReuse(t *testing.T) {
	for _, wait := range []time.Duration{0, 30 * time.Second} {
		t.Run("after "+wait.String(), func(t *testing.T) {
			w := oidcWorld(t)
			p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
			q := p.authorize(w.browser())
			tok, err := p.conf.Exchange(p.ctx, q.Get("code"))
			if err != nil {
				t.Fatal(err)
			}
			w.clock.Advance(wait)
			if _, err := p.conf.Exchange(p.ctx, q.Get("code")); !isOAuthError(err, "invalid_grant") {
				t.Fatalf("second use: %v", err)
			}
			f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
			if status, body, _ := w.tokenRequest(f, "grafana", rpSecret); status != 400 || body["error"] != "invalid_grant" {
				t.Fatalf("refresh token of a replayed code still works: %d %v", status, body)
			}
		})
	}
}

// TestEnsureRegisteredRedirectURI: a registered URI with text appended is
// an error page and never a redirect.
func TestEnsureRegisteredRedirectURI(t *testing.T) {
	w := oidcWorld(t)
	for _, bad := range []string{rpCallback(w) + "/extra", rpCallback(w) + "?x=1", "https://evil.example/cb", ""} {
		p := w.rp("grafana", rpSecret, bad, oauth2.AuthStyleInHeader)
		resp, body := w.browser().get(p.conf.AuthCodeURL("s"))
		if bad == "" {
			// Omitted with exactly one registered URI: that one is used.
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), w.issuer+"/login") && !strings.Contains(resp.Header.Get("Location"), "/login/oauth/authorize") {
				t.Errorf("omitted redirect_uri: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
			continue
		}
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "not registered") {
			t.Errorf("redirect_uri %q: %d Location=%q", bad, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, _ := w.browser().get(w.issuer + "/authorize?client_id=nobody&redirect_uri=" + url.QueryEscape(rpCallback(w)) + "&response_type=code&scope=openid")
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("unknown client: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestPromptNoneNotLoggedIn: prompt=none without a session returns
// login_required to the client.
func TestPromptNoneNotLoggedIn(t *testing.T) {
	w := oidcWorld(t)
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	q := p.authorize(w.browser(), oauth2.SetAuthURLParam("prompt", "none"))
	if q.Get("error") != "login_required" || q.Get("state") != "st-123" || q.Get("iss") != w.issuer {
		t.Fatalf("%v", q)
	}
	if n := w.gh.Calls()["GET /login/oauth/authorize"]; n != 0 {
		t.Errorf("prompt=none showed GitHub %d times", n)
	}
}

// TestPromptLogin: prompt=login forces a fresh GitHub sign-in and moves
// auth_time.
func TestPromptLogin(t *testing.T) {
	w := oidcWorld(t)
	b := w.browser()
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	_, _, first := p.codeFlow(b)
	w.clock.Advance(5 * time.Second)
	w.gh.ResetCalls()
	_, _, second := p.codeFlow(b, oauth2.SetAuthURLParam("prompt", "login"))
	if w.gh.Calls()["GET /login/oauth/authorize"] != 1 {
		t.Error("prompt=login did not go to GitHub")
	}
	if second.AuthTime <= first.AuthTime {
		t.Errorf("auth_time did not move: %d → %d", first.AuthTime, second.AuthTime)
	}
	// Without prompt, a signed-in user goes straight back.
	w.gh.ResetCalls()
	p.codeFlow(b)
	if n := w.gh.Calls()["GET /login/oauth/authorize"]; n != 0 {
		t.Errorf("a signed-in user was sent to GitHub %d times", n)
	}
}

// TestMaxAge is oidcc-max-age-1 and oidcc-max-age-10000.
func TestMaxAge(t *testing.T) {
	w := oidcWorld(t)
	b := w.browser()
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	_, _, first := p.codeFlow(b)
	w.clock.Advance(2 * time.Second)
	w.gh.ResetCalls()
	_, _, long := p.codeFlow(b, oauth2.SetAuthURLParam("max_age", "10000"))
	if w.gh.Calls()["GET /login/oauth/authorize"] != 0 || long.AuthTime != first.AuthTime {
		t.Errorf("max_age=10000 re-authenticated (auth_time %d → %d)", first.AuthTime, long.AuthTime)
	}
	_, _, short := p.codeFlow(b, oauth2.SetAuthURLParam("max_age", "1"))
	if w.gh.Calls()["GET /login/oauth/authorize"] != 1 || short.AuthTime <= first.AuthTime {
		t.Errorf("max_age=1 did not re-authenticate (auth_time %d → %d)", first.AuthTime, short.AuthTime)
	}
}

// TestIDTokenHint is oidcc-id-token-hint.
func TestIDTokenHint(t *testing.T) {
	w := oidcWorld(t)
	b := w.browser()
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	tok, idt, _ := p.codeFlow(b)
	_, idt2, _ := p.codeFlow(b, oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("id_token_hint", tok.Extra("id_token").(string)))
	if idt2.Subject != idt.Subject {
		t.Error("different subject")
	}
	// A forged hint is refused.
	q := p.authorize(b, oauth2.SetAuthURLParam("id_token_hint", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."))
	if q.Get("error") != "invalid_request" {
		t.Errorf("forged id_token_hint: %v", q)
	}
}

// TestUnknownAndIgnoredParameters: unknown parameters and display,
// ui_locales, claims_locales, acr_values, login_hint change nothing.
func TestUnknownAndIgnoredParameters(t *testing.T) {
	w := oidcWorld(t)
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader, "groups", "email", "openid", "profile")
	p.codeFlow(w.browser(),
		oauth2.SetAuthURLParam("extra", "foobar"), oauth2.SetAuthURLParam("display", "popup"),
		oauth2.SetAuthURLParam("ui_locales", "se"), oauth2.SetAuthURLParam("claims_locales", "se"),
		oauth2.SetAuthURLParam("acr_values", "1 2"), oauth2.SetAuthURLParam("login_hint", "alice"),
		oauth2.SetAuthURLParam("claims", `{"id_token":{"name":{"essential":true}}}`))
}

// TestPublicClientNeedsPKCE: a public client must use S256 and then gets
// tokens without a secret.
func TestPublicClientNeedsPKCE(t *testing.T) {
	w := oidcWorld(t)
	b := w.browser()
	p := w.rp("cli", "", "http://127.0.0.1:8000/callback", oauth2.AuthStyleInParams)
	if q := p.authorize(b); q.Get("error") != "invalid_request" {
		t.Fatalf("public client without PKCE: %v", q)
	}
	tok, _, _ := p.codeFlow(b)
	if tok.AccessToken == "" {
		t.Fatal("no access token")
	}
}

// TestRPInitiatedLogout: end_session with id_token_hint,
// post_logout_redirect_uri and state; then prompt=none fails.
func TestRPInitiatedLogout(t *testing.T) {
	w := oidcWorld(t)
	b := w.browser()
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	tok, _, _ := p.codeFlow(b)
	hint := tok.Extra("id_token").(string)
	back := "http://grafana.example.test:" + w.port + "/login"

	// Refused return addresses: the user is signed out but not redirected.
	for name, q := range map[string]url.Values{
		"bad uri":       {"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}},
		"query added":   {"id_token_hint": {hint}, "post_logout_redirect_uri": {back + "?x=1"}},
		"no hint":       {"post_logout_redirect_uri": {back}},
		"modified hint": {"id_token_hint": {hint[:len(hint)-4] + "AAAA"}, "post_logout_redirect_uri": {back}},
	} {
		resp, body := w.browser().get(w.issuer + "/logout?" + q.Encode())
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !strings.Contains(body, "signed-out-now") {
			t.Errorf("%s: %d Location=%q", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	// Expired hints we issued are accepted.
	w.clock.Advance(2 * time.Hour)
	q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {back}, "state": {"xyz"}}
	resp, _ := b.get(w.issuer + "/logout?" + q.Encode())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != back+"?state=xyz" {
		t.Fatalf("logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if q := p.authorize(b, oauth2.SetAuthURLParam("prompt", "none")); q.Get("error") != "login_required" {
		t.Fatalf("prompt=none after logout: %v", q)
	}
	// Grafana's signout_redirect_url: client_id + post_logout_redirect_uri.
	q = url.Values{"client_id": {"grafana"}, "post_logout_redirect_uri": {back}}
	if resp, _ := b.get(w.issuer + "/logout?" + q.Encode()); resp.Header.Get("Location") != back {
		t.Errorf("Grafana-style logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestDiscoveryConfigOP checks what oidcc-discovery-endpoint-verification
// checks: the issuer matches the URL, the required metadata is present,
// RS256 is listed, the endpoints exist, and the lists are honest.
func TestDiscoveryConfigOP(t *testing.T) {
	w := oidcWorld(t)
	resp, body := w.browser().get(w.issuer + "/.well-known/openid-configuration")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if d["issuer"] != w.issuer {
		t.Errorf("issuer %v", d["issuer"])
	}
	list := func(k string) []string {
		var out []string
		for _, v := range d[k].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	for k, want := range map[string][]string{
		"response_types_supported":              {"code"},
		"subject_types_supported":               {"public"},
		"id_token_signing_alg_values_supported": {"RS256"},
		"grant_types_supported":                 {"authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"},
		"code_challenge_methods_supported":      {"S256"},
		"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post", "none"},
		"scopes_supported":                      {"openid", "profile", "email", "groups", "offline_access"},
	} {
		if got := list(k); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	if d["authorization_response_iss_parameter_supported"] != true || d["request_uri_parameter_supported"] != false {
		t.Error("iss parameter / request_uri flags wrong")
	}
	// Every advertised endpoint exists: none answers 404.
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint", "revocation_endpoint", "introspection_endpoint", "device_authorization_endpoint"} {
		u, _ := d[k].(string)
		if !strings.HasPrefix(u, w.issuer+"/") {
			t.Errorf("%s = %q", k, u)
			continue
		}
		resp, _ := w.browser().get(u)
		if resp.StatusCode == http.StatusNotFound {
			t.Errorf("%s %s answers 404", k, u)
		}
	}
	// The JWKS has distinct kids and only public keys.
	_, body = w.browser().get(d["jwks_uri"].(string))
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil || len(set.Keys) < 2 {
		t.Fatalf("jwks: %v %s", err, body)
	}
	seen := map[any]bool{}
	for _, k := range set.Keys {
		if seen[k["kid"]] || k["d"] != nil || k["use"] != "sig" {
			t.Errorf("bad key %v", k)
		}
		seen[k["kid"]] = true
	}
}

// TestClientTokenLifetime: a client's token_ttl sets expires_in and the
// ID token's exp.
func TestClientTokenLifetime(t *testing.T) {
	w := oidcWorld(t)
	p := w.rp("short", "short-secret-0123456789abcdef01234", "http://short.example.test:"+w.port+"/cb", oauth2.AuthStyleInHeader)
	tok, idt, _ := p.codeFlow(w.browser())
	if got := idt.Expiry.Sub(idt.IssuedAt); got != 5*time.Minute {
		t.Errorf("ID token lifetime %s, want 5m", got)
	}
	if left := time.Until(tok.Expiry); left > 5*time.Minute+time.Second || left < 4*time.Minute {
		t.Errorf("expires_in gives %s, want about 5m", left)
	}
}

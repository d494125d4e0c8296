package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestLogoutNeedsConfirmation: a cross-site GET (a link, an image) or a
// POST without this session's CSRF token does not sign anyone out; the
// confirmation's POST does. An RP-initiated logout with only a client_id
// asks too, and then returns to the registered URI.
func TestLogoutNeedsConfirmation(t *testing.T) {
	w := oidcWorld(t)
	b := w.browser()
	b.signIn("/")
	alive := func() bool {
		t.Helper()
		resp, body := b.get(w.issuer + "/")
		return resp.StatusCode == http.StatusOK && strings.Contains(body, `id="signed-in"`)
	}
	resp, body := b.get(w.issuer + "/logout?rd=/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="confirm-logout"`) || !alive() {
		t.Fatalf("GET /logout signed out without asking: %d", resp.StatusCode)
	}
	other := w.browser()
	other.signIn("/")
	_, otherBody := other.get(w.issuer + "/logout")
	otherToken := hiddenField.FindStringSubmatch(otherBody)
	for name, form := range map[string]url.Values{
		"no token":              {"rd": {"/"}},
		"made-up token":         {"rd": {"/"}, "csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		"another session's one": {"rd": {"/"}, "csrf": {otherToken[2]}},
	} {
		if resp, body := b.postForm("/logout", form); resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="confirm-logout"`) || !alive() {
			t.Errorf("%s: %d, the session ended", name, resp.StatusCode)
		}
	}
	back := "http://grafana.example.test:" + w.port + "/login"
	resp, body = b.get(w.issuer + "/logout?" + url.Values{"client_id": {"grafana"}, "post_logout_redirect_uri": {back}}.Encode())
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="confirm-logout"`) {
		t.Fatalf("client_id-only logout did not ask: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b.confirmLogout(body); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != back {
		t.Fatalf("confirmed logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if alive() {
		t.Error("still signed in after confirming")
	}
	if !strings.Contains(otherBody, `id="confirm-logout"`) {
		t.Error("the other browser got no confirmation")
	}
}

// TestLogoutHintOfSomeoneElseAsks: an id_token_hint skips the confirmation
// only when it names the signed-in person.
func TestLogoutHintOfSomeoneElseAsks(t *testing.T) {
	w := oidcWorld(t)
	mallory := w.browser()
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	tok, _, _ := p.codeFlow(mallory)
	hint := tok.Extra("id_token").(string)
	w.gh.SetAutoApprove("bob")
	victim := w.browser()
	victim.signIn("/")
	resp, body := victim.get(w.issuer + "/logout?" + url.Values{"id_token_hint": {hint}}.Encode())
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="confirm-logout"`) {
		t.Fatalf("another person's hint signed the victim out: %d", resp.StatusCode)
	}
	resp, body = mallory.get(w.issuer + "/logout?" + url.Values{"id_token_hint": {hint}}.Encode())
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "signed-out-now") {
		t.Fatalf("the hint's own person was not signed out: %d\n%s", resp.StatusCode, body)
	}
}

// TestPromptLoginShowsGitHubsAccountPicker: prompt=login cannot make
// GitHub ask for a password again; the broker asks GitHub for its account
// picker instead (prompt=select_account).
func TestPromptLoginShowsGitHubsAccountPicker(t *testing.T) {
	w := oidcWorld(t)
	b := w.browser()
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	p.codeFlow(b)
	_, _, last := b.follow(p.conf.AuthCodeURL("st", oauth2.SetAuthURLParam("prompt", "login")), func(u string) bool {
		return strings.HasPrefix(u, w.ghSrv.URL)
	})
	u, err := url.Parse(last)
	if err != nil || !strings.HasPrefix(last, w.ghSrv.URL+"/login/oauth/authorize") || u.Query().Get("prompt") != "select_account" {
		t.Fatalf("prompt=login went to %s", last)
	}
}

// TestSignOutKeepsOfflineRefreshTokens: a plain sign-out ends the
// session's refresh tokens except those granted with offline_access
// (OpenID Back-Channel Logout §2.7): the offline one still refreshes, and
// its new access token answers at /userinfo, while the old one does not.
func TestSignOutKeepsOfflineRefreshTokens(t *testing.T) {
	w := oidcWorld(t)
	b := w.browser()
	offline := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	tok, _, _ := offline.codeFlow(b)
	w.clock.Advance(time.Millisecond) // the test clock stands still; the tokens come before the sign-out
	_, body := b.get(w.issuer + "/logout")
	if resp, _ := b.confirmLogout(body); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	userinfo := func(at string) int {
		req, _ := http.NewRequest(http.MethodGet, w.issuer+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+at)
		resp, err := w.browser().client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := userinfo(tok.AccessToken); got != http.StatusUnauthorized {
		t.Errorf("/userinfo with an access token from before the sign-out: %d", got)
	}
	w.clock.Advance(time.Millisecond)
	old := *tok
	old.Expiry = time.Now().Add(-time.Minute)
	fresh, err := offline.conf.TokenSource(offline.ctx, &old).Token()
	if err != nil {
		t.Fatalf("the offline_access refresh token stopped at sign-out: %v", err)
	}
	if got := userinfo(fresh.AccessToken); got != http.StatusOK {
		t.Errorf("/userinfo with the refreshed access token: %d", got)
	}
}

package githubfake

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

func TestWebFlowWithOAuth2Client(t *testing.T) {
	tests := []struct {
		name  string
		ctx   context.Context
		style oauth2.AuthStyle
	}{
		{"form reply, params auth", context.Background(), oauth2.AuthStyleInParams},
		{"json reply, params auth", jsonCtx(), oauth2.AuthStyleInParams},
		{"form reply, basic auth", context.Background(), oauth2.AuthStyleInHeader},
		{"json reply, basic auth", jsonCtx(), oauth2.AuthStyleInHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, ts := newFake(t, nil, Options{})
			fake.SetAutoApprove("alice")
			cfg := oauthConfig(ts, tc.style, "read:org", "user:email")
			verifier := oauth2.GenerateVerifier()
			loc := follow(t, cfg.AuthCodeURL("xyz", oauth2.S256ChallengeOption(verifier)))

			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != devCallback {
				t.Fatalf("redirected to %s, want %s", got, devCallback)
			}
			if st := loc.Query().Get("state"); st != "xyz" {
				t.Errorf("state = %q, want xyz", st)
			}
			code := loc.Query().Get("code")
			if !regexp.MustCompile(`^[0-9a-f]{20}$`).MatchString(code) {
				t.Errorf("code %q is not 20 hex chars", code)
			}
			tok, err := cfg.Exchange(tc.ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if !regexp.MustCompile(`^gho_[0-9A-Za-z]{36}$`).MatchString(tok.AccessToken) {
				t.Errorf("token %q does not look like gho_ + 36 alphanumerics", tok.AccessToken)
			}
			if tok.TokenType != "bearer" {
				t.Errorf("token_type = %q, want bearer", tok.TokenType)
			}
			if s := tok.Extra("scope"); s != "read:org,user:email" {
				t.Errorf("scope = %v, want comma-separated read:org,user:email", s)
			}
			if !tok.Expiry.IsZero() {
				t.Errorf("OAuth App tokens do not expire; got expiry %v", tok.Expiry)
			}
			resp := apiGet(t, nil, ts.URL+"/user", tok.AccessToken)
			wantStatus(t, resp, http.StatusOK)
			if u := decode[map[string]any](t, resp); u["login"] != "alice" {
				t.Errorf("GET /user login = %v, want alice", u["login"])
			}
		})
	}
}

func TestAuthorizeRedirectURIRule(t *testing.T) {
	tests := []struct {
		name, client, redirect string
		wantPrefix             string // where the browser is sent
		wantErr                string // error param, "" for a code
	}{
		{"absent uses callback", devClientID, "", devCallback + "?code=", ""},
		{"exact", devClientID, devCallback, devCallback + "?code=", ""},
		{"sub-path", devClientID, devCallback + "/deeper/still", devCallback + "/deeper/still?code=", ""},
		{"query kept", devClientID, devCallback + "?next=%2Fhome", devCallback + "?next=%2Fhome&code=", ""},
		{"sub-domain", devClientID, "http://auth.localhost:8080/callback", "http://auth.localhost:8080/callback?code=", ""},
		{"sibling path", devClientID, "http://localhost:8080/callbackx", devCallback + "?error=redirect_uri_mismatch", "redirect_uri_mismatch"},
		{"parent path", devClientID, "http://localhost:8080/", devCallback + "?error=redirect_uri_mismatch", "redirect_uri_mismatch"},
		{"dot segments", devClientID, devCallback + "/../admin", devCallback + "?error=redirect_uri_mismatch", "redirect_uri_mismatch"},
		{"other port", devClientID, "http://localhost:9090/callback", devCallback + "?error=redirect_uri_mismatch", "redirect_uri_mismatch"},
		{"other scheme", devClientID, "https://localhost:8080/callback", devCallback + "?error=redirect_uri_mismatch", "redirect_uri_mismatch"},
		{"other host", devClientID, "http://evil.example:8080/callback", devCallback + "?error=redirect_uri_mismatch", "redirect_uri_mismatch"},
		{"loopback any port", "loopback-app", "http://127.0.0.1:53123/cb", "http://127.0.0.1:53123/cb?code=", ""},
		{"loopback other path", "loopback-app", "http://127.0.0.1:53123/x", "http://127.0.0.1/cb?error=redirect_uri_mismatch", "redirect_uri_mismatch"},
		{"localhost is not the loopback rule", devClientID, "http://localhost:1234/callback", devCallback + "?error=redirect_uri_mismatch", "redirect_uri_mismatch"},
	}
	fake, ts := newFake(t, nil, Options{})
	fake.SetAutoApprove("alice")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"client_id": {tc.client}, "state": {"st8"}}
			if tc.redirect != "" {
				q.Set("redirect_uri", tc.redirect)
			}
			loc := follow(t, ts.URL+"/login/oauth/authorize?"+q.Encode())
			if !strings.HasPrefix(loc.String(), tc.wantPrefix) {
				t.Errorf("Location = %s, want prefix %s", loc, tc.wantPrefix)
			}
			if got := loc.Query().Get("error"); got != tc.wantErr {
				t.Errorf("error = %q, want %q", got, tc.wantErr)
			}
			if loc.Query().Get("state") != "st8" {
				t.Errorf("state lost: %s", loc)
			}
			if tc.wantErr != "" && (loc.Query().Get("error_description") == "" || loc.Query().Get("error_uri") == "") {
				t.Errorf("error_description/error_uri missing: %s", loc)
			}
		})
	}
}

func TestAuthorizePKCEMethod(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	fake.SetAutoApprove("alice")
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	tests := []struct {
		name, method, challenge, wantErr string
	}{
		{"S256", "S256", challenge, ""},
		{"plain refused", "plain", "some-plain-verifier-value-that-is-long-enough-43", "invalid_request"},
		{"method missing", "", challenge, "invalid_request"},
		{"malformed challenge", "S256", "short", "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"client_id": {devClientID}, "state": {"s"}, "code_challenge": {tc.challenge}}
			if tc.method != "" {
				q.Set("code_challenge_method", tc.method)
			}
			loc := follow(t, ts.URL+"/login/oauth/authorize?"+q.Encode())
			if got := loc.Query().Get("error"); got != tc.wantErr {
				t.Errorf("error = %q, want %q (%s)", got, tc.wantErr, loc)
			}
		})
	}
}

func TestAuthorizeUnknownClientIs404Page(t *testing.T) {
	_, ts := newFake(t, nil, Options{})
	resp, err := noRedirect().Get(ts.URL + "/login/oauth/authorize?client_id=nope&redirect_uri=" + url.QueryEscape(devCallback))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("got %d %s, want 404 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestSignInPage(t *testing.T) {
	_, ts := newFake(t, nil, Options{})
	authURL := ts.URL + "/login/oauth/authorize?client_id=ghbroker-dev&scope=read%3Aorg&state=abc&login=bob&redirect_uri=" + url.QueryEscape(devCallback+"/sub")
	resp, err := http.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"Sign in to GitHub (emulator)", `data-login="alice"`, `data-login="erin"`, `id="cancel"`,
		`name="state" value="abc"`, `name="scope" value="read:org"`, `value="bob" id="login-bob" data-login="bob" class="suggested"`,
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("sign-in page lacks %s", want)
		}
	}
	post := func(extra url.Values) *url.URL {
		form := url.Values{"client_id": {devClientID}, "scope": {"read:org"}, "state": {"abc"}, "redirect_uri": {devCallback + "/sub"}}
		for k, v := range extra {
			form[k] = v
		}
		resp, err := noRedirect().PostForm(ts.URL+"/login/oauth/authorize", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("POST %v: status %d, want 302", extra, resp.StatusCode)
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return loc
	}
	t.Run("choose user", func(t *testing.T) {
		loc := post(url.Values{"login": {"bob"}})
		if loc.Path != "/callback/sub" || loc.Query().Get("code") == "" || loc.Query().Get("state") != "abc" {
			t.Errorf("Location = %s", loc)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		loc := post(url.Values{"cancel": {"1"}})
		q := loc.Query()
		if q.Get("error") != "access_denied" || q.Get("error_description") != "The user has denied your application access." || q.Get("state") != "abc" {
			t.Errorf("Location = %s", loc)
		}
		if !strings.Contains(loc.RawQuery, "error_description=The+user+has+denied+your+application+access.") {
			t.Errorf("description not encoded like GitHub: %s", loc.RawQuery)
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		form := url.Values{"client_id": {devClientID}, "login": {"mallory"}}
		resp, err := noRedirect().PostForm(ts.URL+"/login/oauth/authorize", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("status %d, want 422", resp.StatusCode)
		}
	})
}

func TestAutoApprove(t *testing.T) {
	fake, ts := newFake(t, nil, Options{})
	cfg := oauthConfig(ts, oauth2.AuthStyleInParams)
	fake.SetAutoApprove("alice")
	for _, tc := range []struct{ hint, want string }{{"", "alice"}, {"carol", "carol"}, {"nobody", "alice"}} {
		var opts []oauth2.AuthCodeOption
		if tc.hint != "" {
			opts = append(opts, oauth2.SetAuthURLParam("login", tc.hint))
		}
		code := follow(t, cfg.AuthCodeURL("s", opts...)).Query().Get("code")
		tok, err := cfg.Exchange(context.Background(), code)
		if err != nil {
			t.Fatal(err)
		}
		resp := apiGet(t, nil, ts.URL+"/user", tok.AccessToken)
		if got := decode[map[string]any](t, resp)["login"]; got != tc.want {
			t.Errorf("login hint %q: signed in as %v, want %s", tc.hint, got, tc.want)
		}
	}
	fake.SetAutoApprove("")
	resp, err := noRedirect().Get(cfg.AuthCodeURL("s"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("auto-approve off: status %d, want the 200 sign-in page", resp.StatusCode)
	}
}

func TestRedirectAllowedUnit(t *testing.T) {
	tests := []struct {
		cb, ru string
		want   bool
	}{
		{"http://example.com/path", "http://example.com/path", true},
		{"http://example.com/path", "http://example.com/path/subdir/other", true},
		{"http://example.com/path", "http://oauth.example.com/path", true},
		{"http://example.com/path", "http://oauth.example.com/path/subdir/other", true},
		{"http://example.com/path", "http://example.com/bar", false},
		{"http://example.com/path", "http://example.com/", false},
		{"http://example.com/path", "http://example.com:8080/path", false},
		{"http://example.com/path", "http://oauth.example.com:8080/path", false},
		{"http://example.com/path", "http://example.org", false},
		{"http://example.com/path", "http://badexample.com/path", false},
		{"http://example.com/path", "http://example.com:80/path", true},
		{"http://example.com/path", "http://example.com/path#frag", false},
		{"http://example.com/path", "http://user@example.com/path", false},
		{"http://example.com/path", "http://example.com/path/%2e%2e/x", false},
		{"http://example.com/path", "http://example.com/path//x", false},
		{"http://127.0.0.1/path", "http://127.0.0.1:1234/path", true},
		{"http://127.0.0.1:80/path", "http://127.0.0.1:1234/path/x", true},
		{"http://127.0.0.1/path", "http://x.127.0.0.1/path", false},
		{"https://example.com/", "https://example.com/anything", true},
	}
	for _, tc := range tests {
		if got := redirectAllowed(tc.cb, tc.ru); got != tc.want {
			t.Errorf("redirectAllowed(%q, %q) = %v, want %v", tc.cb, tc.ru, got, tc.want)
		}
	}
}

func FuzzRedirectAllowed(f *testing.F) {
	for _, s := range []string{devCallback, devCallback + "/x", "http://a.localhost:8080/callback", "http://localhost:8080/%2e%2e", "//x", "http://[::1]/"} {
		f.Add(devCallback, s)
	}
	f.Fuzz(func(t *testing.T, cb, ru string) {
		if !redirectAllowed(cb, ru) {
			return
		}
		c, err1 := url.Parse(cb)
		r, err2 := url.Parse(ru)
		if err1 != nil || err2 != nil || !strings.EqualFold(c.Scheme, r.Scheme) || r.Fragment != "" || r.User != nil {
			t.Errorf("redirectAllowed(%q, %q) = true", cb, ru)
		}
		if !strings.HasPrefix(r.EscapedPath()+"/", strings.TrimSuffix(c.EscapedPath(), "/")+"/") {
			t.Errorf("redirectAllowed(%q, %q) = true outside the callback path", cb, ru)
		}
	})
}

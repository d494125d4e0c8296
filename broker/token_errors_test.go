package broker_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestTokenEndpointErrors: every RFC 6749 §5.2 error path answers its
// specified error, as JSON with no-store, and never a 500.
func TestTokenEndpointErrors(t *testing.T) {
	w := oidcWorld(t)
	b := w.browser()
	p := w.rp("grafana", rpSecret, rpCallback(w), oauth2.AuthStyleInHeader)
	verifier := oauth2.GenerateVerifier()
	// newCode returns a fresh code issued with PKCE.
	newCode := func() string {
		return p.authorize(b, oauth2.S256ChallengeOption(verifier)).Get("code")
	}
	noPKCE := p.authorize(b).Get("code")
	good := func(code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpCallback(w)}, "code_verifier": {verifier}}
	}
	with := func(v url.Values, k, val string) url.Values {
		c := url.Values{}
		for kk, vv := range v {
			c[kk] = append([]string(nil), vv...)
		}
		if val == "" {
			c.Del(k)
		} else {
			c.Set(k, val)
		}
		return c
	}
	tests := []struct {
		name       string
		form       url.Values
		id, secret string
		status     int
		code       string
	}{
		{"missing grant_type", with(good(newCode()), "grant_type", ""), "grafana", rpSecret, 400, "invalid_request"},
		{"unsupported grant", with(good(newCode()), "grant_type", "password"), "grafana", rpSecret, 400, "unsupported_grant_type"},
		{"implicit grant", with(good(newCode()), "grant_type", "client_credentials"), "grafana", rpSecret, 400, "unsupported_grant_type"},
		{"wrong secret", good(newCode()), "grafana", "wrong", 401, "invalid_client"},
		{"unknown client", good(newCode()), "nobody", "x", 401, "invalid_client"},
		{"no client auth", good(newCode()), "", "", 401, "invalid_client"},
		{"missing code", with(good(""), "code", ""), "grafana", rpSecret, 400, "invalid_request"},
		{"unknown code", good("not-a-code"), "grafana", rpSecret, 400, "invalid_grant"},
		{"code for another client", good(newCode()), "other", "other-secret-0123456789abcdef01234", 400, "invalid_grant"},
		{"other redirect_uri", with(good(newCode()), "redirect_uri", rpCallback(w)+"/x"), "grafana", rpSecret, 400, "invalid_grant"},
		{"missing verifier", with(good(newCode()), "code_verifier", ""), "grafana", rpSecret, 400, "invalid_grant"},
		{"wrong verifier", with(good(newCode()), "code_verifier", oauth2.GenerateVerifier()), "grafana", rpSecret, 400, "invalid_grant"},
		{"verifier without challenge (downgrade)", with(good(noPKCE), "code_verifier", verifier), "grafana", rpSecret, 400, "invalid_grant"},
		{"bad refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"abc.def"}}, "grafana", rpSecret, 400, "invalid_grant"},
		{"malformed refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"garbage"}}, "grafana", rpSecret, 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, h := w.tokenRequest(tt.form, tt.id, tt.secret)
			if status != tt.status || body["error"] != tt.code {
				t.Fatalf("%d %v, want %d %s", status, body, tt.status, tt.code)
			}
			if h.Get("Cache-Control") != "no-store" || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
				t.Errorf("headers %v", h)
			}
			if tt.status == 401 && tt.id != "" && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("invalid_client after Basic lacks WWW-Authenticate: %v", h)
			}
		})
	}

	t.Run("expired code", func(t *testing.T) {
		code := newCode()
		w.clock.Advance(61 * time.Second)
		if status, body, _ := w.tokenRequest(good(code), "grafana", rpSecret); status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("%d %v", status, body)
		}
	})

	raw := func(body, ctype string, header http.Header) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, w.issuer+"/token", strings.NewReader(body))
		req.Header = header
		req.Header.Set("Content-Type", ctype)
		resp, err := w.browser().client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("non-JSON %d: %s", resp.StatusCode, b)
		}
		return resp.StatusCode, out
	}
	basic := http.Header{}
	basic.Set("Authorization", "Basic "+encodeBasic("grafana", rpSecret))
	for name, tc := range map[string]struct {
		body, ctype string
		header      http.Header
		status      int
		code        string
	}{
		"duplicate parameter": {"grant_type=authorization_code&code=a&code=b", "application/x-www-form-urlencoded", basic.Clone(), 400, "invalid_request"},
		"oversized body":      {"grant_type=authorization_code&code=" + strings.Repeat("a", 100<<10), "application/x-www-form-urlencoded", basic.Clone(), 400, "invalid_request"},
		"JSON body":           {`{"grant_type":"authorization_code"}`, "application/json", basic.Clone(), 400, "invalid_request"},
		"malformed Basic":     {"grant_type=authorization_code&code=a", "application/x-www-form-urlencoded", http.Header{"Authorization": {"Basic !!!"}}, 401, "invalid_client"},
		"Basic without colon": {"grant_type=authorization_code&code=a", "application/x-www-form-urlencoded", http.Header{"Authorization": {"Basic Z3JhZmFuYQ=="}}, 401, "invalid_client"},
		"two auth methods":    {"grant_type=authorization_code&code=a&client_secret=x", "application/x-www-form-urlencoded", basic.Clone(), 400, "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			status, out := raw(tc.body, tc.ctype, tc.header)
			if status != tc.status || out["error"] != tc.code {
				t.Fatalf("%d %v, want %d %s", status, out, tc.status, tc.code)
			}
		})
	}
}

func encodeBasic(id, secret string) string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestAuthorizeErrorsRedirect: errors after the client and redirect URI
// are validated go back to the client with error, state and iss.
func TestAuthorizeErrorsRedirect(t *testing.T) {
	w := oidcWorld(t)
	base := url.Values{"client_id": {"grafana"}, "redirect_uri": {rpCallback(w)}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s1"}}
	for name, tc := range map[string]struct {
		change func(url.Values)
		code   string
	}{
		"missing response_type": {func(v url.Values) { v.Del("response_type") }, "invalid_request"},
		"token response_type":   {func(v url.Values) { v.Set("response_type", "token") }, "unsupported_response_type"},
		"no openid scope":       {func(v url.Values) { v.Set("scope", "profile") }, "invalid_scope"},
		"plain PKCE": {func(v url.Values) {
			v.Set("code_challenge", strings.Repeat("a", 43))
			v.Set("code_challenge_method", "plain")
		}, "invalid_request"},
		"challenge no method": {func(v url.Values) { v.Set("code_challenge", strings.Repeat("a", 43)) }, "invalid_request"},
		"request object":      {func(v url.Values) { v.Set("request", "eyJ.x.y") }, "request_not_supported"},
		"request_uri":         {func(v url.Values) { v.Set("request_uri", "https://x/y") }, "request_uri_not_supported"},
		"bad max_age":         {func(v url.Values) { v.Set("max_age", "-1") }, "invalid_request"},
		"prompt none+login":   {func(v url.Values) { v.Set("prompt", "none login") }, "invalid_request"},
		"duplicate state":     {func(v url.Values) { v.Add("scope", "openid") }, "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			v := url.Values{}
			for k, vv := range base {
				v[k] = append([]string(nil), vv...)
			}
			tc.change(v)
			resp, _ := w.browser().get(w.issuer + "/authorize?" + v.Encode())
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), rpCallback(w)) {
				t.Fatalf("%d Location=%q", resp.StatusCode, resp.Header.Get("Location"))
			}
			q := loc.Query()
			if q.Get("error") != tc.code || q.Get("state") != "s1" || q.Get("iss") != w.issuer {
				t.Errorf("redirected with %v, want error=%s", q, tc.code)
			}
		})
	}
	// POST works like GET.
	req, _ := http.NewRequest(http.MethodPost, w.issuer+"/authorize", strings.NewReader(base.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := w.browser().client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("POST /authorize: %d", resp.StatusCode)
	}
}

// TestUserinfoErrors: RFC 6750 errors in WWW-Authenticate; a session token
// is not an access token.
func TestUserinfoErrors(t *testing.T) {
	w := oidcWorld(t)
	b := w.browser()
	b.signIn("/")
	session := b.sessionToken(w.issuer + "/")
	for name, tc := range map[string]struct {
		auth   string
		status int
		want   string
	}{
		"no token":      {"", 401, `Bearer realm="` + w.issuer + `"`},
		"garbage":       {"Bearer abc", 401, `error="invalid_token"`},
		"session token": {"Bearer " + session, 401, `error="invalid_token"`},
		"basic scheme":  {"Basic abc", 400, `error="invalid_request"`},
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, w.issuer+"/userinfo", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := w.browser().client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(resp.Header.Get("WWW-Authenticate"), tc.want) {
				t.Errorf("%d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			if tc.auth == "" && strings.Contains(resp.Header.Get("WWW-Authenticate"), "error=") {
				t.Error("no credentials must get a bare challenge (RFC 6750 §3.1)")
			}
		})
	}
}

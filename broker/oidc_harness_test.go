package broker_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	brokeroidc "github.com/ghbroker/ghbroker/broker/oidc"
)

// Relying parties registered in oidcWorld.
const (
	rpSecret = "grafana-secret-ü%&-0123456789abcdef" // characters that client_secret_basic must form-encode
)

func rpCallback(w *world) string {
	return "http://grafana.example.test:" + w.port + "/login/generic_oauth"
}

// oidcWorld is a world with three clients: a confidential "grafana", a
// second confidential "other", and a public "cli" (PKCE required).
func oidcWorld(t testing.TB) *world {
	t.Helper()
	return newWorld(t, oidcWorldOptions())
}

// oidcWorldOptions are the options of oidcWorld, for tests that add some.
func oidcWorldOptions() worldOptions {
	return worldOptions{clients: func(w *world) []brokeroidc.Client {
		return []brokeroidc.Client{
			{ID: "grafana", Secret: rpSecret, RedirectURIs: []string{rpCallback(w)},
				PostLogoutRedirectURIs: []string{"http://grafana.example.test:" + w.port + "/login"}},
			{ID: "other", Secret: "other-secret-0123456789abcdef01234", RedirectURIs: []string{"http://other.example.test:" + w.port + "/cb"}},
			{ID: "cli", Public: true, RedirectURIs: []string{"http://127.0.0.1:8000/callback"}},
			{ID: "short", Secret: "short-secret-0123456789abcdef01234", TokenTTL: 5 * time.Minute, RedirectURIs: []string{"http://short.example.test:" + w.port + "/cb"}},
		}
	}}
}

// rp is an OIDC relying party built from go-oidc and x/oauth2.
type rp struct {
	w        *world
	ctx      context.Context
	provider *oidc.Provider
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func (w *world) rp(clientID, secret, redirect string, style oauth2.AuthStyle, scopes ...string) *rp {
	w.t.Helper()
	// The RP talks to the broker through the same resolver as the browser.
	ctx := oidc.ClientContext(context.Background(), w.browser().client)
	ctx = context.WithValue(ctx, oauth2.HTTPClient, w.browser().client)
	p, err := oidc.NewProvider(ctx, w.issuer)
	if err != nil {
		w.t.Fatalf("go-oidc discovery: %v", err)
	}
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email", "groups", oidc.ScopeOfflineAccess}
	}
	ep := p.Endpoint()
	ep.AuthStyle = style
	return &rp{w: w, ctx: ctx, provider: p,
		conf:     oauth2.Config{ClientID: clientID, ClientSecret: secret, RedirectURL: redirect, Endpoint: ep, Scopes: scopes},
		verifier: p.Verifier(&oidc.Config{ClientID: clientID, Now: w.clock.Now}),
	}
}

// authorize drives the browser through /authorize (signing in at GitHub
// when needed) and returns the query the broker sent back to the RP.
func (p *rp) authorize(b *browser, opts ...oauth2.AuthCodeOption) url.Values {
	p.w.t.Helper()
	authURL := p.conf.AuthCodeURL("st-123", opts...)
	_, body, last := b.follow(authURL, func(u string) bool { return strings.HasPrefix(u, p.conf.RedirectURL) })
	if !strings.HasPrefix(last, p.conf.RedirectURL) {
		p.w.t.Fatalf("authorize did not return to the client; ended at %s\n%s", last, body)
	}
	u, _ := url.Parse(last)
	return u.Query()
}

// tokenRequest posts a raw form to /token with optional Basic auth.
func (w *world) tokenRequest(form url.Values, basicID, basicSecret string) (int, map[string]any, http.Header) {
	w.t.Helper()
	return w.post("/token", form, basicID, basicSecret)
}

func (w *world) post(path string, form url.Values, basicID, basicSecret string) (int, map[string]any, http.Header) {
	w.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, w.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := w.browser().client.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			w.t.Fatalf("%s answered non-JSON %d: %s", path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out, resp.Header
}

package broker_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ghbroker/ghbroker/authz"
	brokeroidc "github.com/ghbroker/ghbroker/broker/oidc"
	"github.com/ghbroker/ghbroker/claims"
)

// TestGatewayAccess is issue #13 finding 4: an access token is a gateway
// credential only when its client opts in with gateway_access. The broker
// marks such tokens with the audience ISSUER/gateway, which the check
// requires; /userinfo accepts every client's access tokens.
func TestGatewayAccess(t *testing.T) {
	w := newWorld(t, worldOptions{clients: func(w *world) []brokeroidc.Client {
		return []brokeroidc.Client{
			{ID: "grafana", Secret: rpSecret, RedirectURIs: []string{rpCallback(w)}},
			{ID: "ci", Secret: "ci-secret-0123456789abcdef0123456789", GatewayAccess: true, RedirectURIs: []string{"http://ci.example.test:" + w.port + "/cb"}},
		}
	}})
	policy, err := authz.CompilePolicy(authz.PolicyConfig{Rules: []authz.RuleConfig{
		{Hosts: []string{"app.example.test"}, Allow: authz.AllowConfig{Authenticated: true}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	check, err := authz.NewHTTPHandler(authz.HTTPOptions{Issuer: w.issuer, Verifier: w.verifier, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	gateway := claims.GatewayAudience(w.issuer)
	for _, tt := range []struct {
		client, secret, redirect string
		gateway                  bool
	}{
		{"grafana", rpSecret, rpCallback(w), false},
		{"ci", "ci-secret-0123456789abcdef0123456789", "http://ci.example.test:" + w.port + "/cb", true},
	} {
		t.Run(tt.client, func(t *testing.T) {
			p := w.rp(tt.client, tt.secret, tt.redirect, oauth2.AuthStyleInHeader)
			tok, _, _ := p.codeFlow(w.browser())
			for _, at := range []string{tok.AccessToken, p.refresh(t, tok).AccessToken} {
				c, err := w.verifier.Verify(at, claims.KindAccess)
				if err != nil {
					t.Fatal(err)
				}
				if got := slices.Contains(c.Audience, gateway); got != tt.gateway {
					t.Errorf("aud %v names %s: %v, want %v", c.Audience, gateway, got, tt.gateway)
				}
				if !c.Audience.Contains(w.issuer) || !c.Audience.Contains(tt.client) {
					t.Errorf("aud %v lacks the issuer or the client", c.Audience)
				}
				// /userinfo takes every client's access token.
				req, _ := http.NewRequest(http.MethodGet, w.issuer+"/userinfo", nil)
				req.Header.Set("Authorization", "Bearer "+at)
				resp, err := w.browser().client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("/userinfo: %d", resp.StatusCode)
				}
				// The check takes only a gateway client's.
				r := httptest.NewRequest(http.MethodGet, "/x", nil)
				r.Host = "app.example.test"
				r.Header.Set("Authorization", "Bearer "+at)
				rec := httptest.NewRecorder()
				check.ServeHTTP(rec, r)
				want := http.StatusUnauthorized
				if tt.gateway {
					want = http.StatusOK
				}
				if rec.Code != want {
					t.Errorf("check: %d, want %d (%s)", rec.Code, want, rec.Header().Get("WWW-Authenticate"))
				}
			}
		})
	}
}

// refresh redeems tok's refresh token.
func (p *rp) refresh(t *testing.T, tok *oauth2.Token) *oauth2.Token {
	t.Helper()
	expired := *tok
	expired.Expiry = p.w.clock.Now().Add(-1)
	next, err := p.conf.TokenSource(p.ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if next.AccessToken == tok.AccessToken {
		t.Fatal("refresh returned the same access token")
	}
	return next
}

package authz

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/authz/verify"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/store/memory"
)

// forge returns a token with tok's header and payload and a made-up
// signature of the right length: it passes every check but the signature.
func forge(tok string, n int) string {
	dot := strings.LastIndexByte(tok, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	for i := range sig {
		sig[i] = byte(n + i)
	}
	return tok[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// countingVerifier counts the tokens handed to Verify: each is a signature
// check unless cached. Precheck is the wrapped verifier's when it has one.
type countingVerifier struct {
	v     TokenVerifier
	calls int
}

func (c *countingVerifier) Verify(token string, kind claims.Kind) (*claims.Claims, error) {
	c.calls++
	return c.v.Verify(token, kind)
}

func (c *countingVerifier) Precheck(token string, kind claims.Kind) (bool, error) {
	if p, ok := any(c.v).(interface {
		Precheck(string, claims.Kind) (bool, error)
	}); ok {
		return p.Precheck(token, kind)
	}
	return false, nil
}

// TestForgedCookiesCostOneSignature is issue #13 finding 6: a request
// carrying five forged session cookies (four NAME values and a chunked
// one), each passing every check but its signature, cost five signature
// checks. It costs one now, and a forgery sent again costs none.
func TestForgedCookiesCostOneSignature(t *testing.T) {
	km, err := keys.NewManager(context.Background(), memory.New(memory.Options{}), keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	real, err := verify.New(verify.Options{Issuer: testIssuer, Keys: km})
	if err != nil {
		t.Fatal(err)
	}
	v := &countingVerifier{v: real}
	hd := newTestHTTPHandler(t, v, "")
	now := time.Now()
	good, err := km.Sign(claims.KindSession, &claims.Claims{Claims: jwt.Claims{Issuer: testIssuer, Subject: "1", Audience: jwt.Audience{testIssuer},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))}, PreferredUsername: "sre-user", Groups: []string{"acme/sre"}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(cookie string) int {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = grafanaHost
		r.Header.Set("Accept", "*/*")
		r.Header.Set("Cookie", cookie)
		w := httptest.NewRecorder()
		hd.ServeHTTP(w, r)
		return w.Code
	}
	var forged []string
	for i := range 5 {
		forged = append(forged, forge(good, 7*i+1))
	}
	chunk := len(forged[4]) / 2
	cookie := fmt.Sprintf("_ghbroker=%s; _ghbroker=%s; _ghbroker=%s; _ghbroker=%s; _ghbroker.0=%s; _ghbroker.1=%s",
		forged[0], forged[1], forged[2], forged[3], forged[4][:chunk], forged[4][chunk:])

	if got := check(cookie); got != http.StatusUnauthorized {
		t.Fatalf("forged cookies: %d, want 401", got)
	}
	if v.calls != 1 {
		t.Errorf("a request with five forged cookies verified %d of them, want 1", v.calls)
	}
	// Every further request verifies at most one; once each forgery has
	// failed, none (the verifier remembers the failures).
	for range 6 {
		v.calls = 0
		check(cookie)
		if v.calls > 1 {
			t.Errorf("a repeated request verified %d cookies", v.calls)
		}
	}
	if v.calls != 0 {
		t.Errorf("forgeries that failed before were verified again: %d", v.calls)
	}
	// The real session beside forged ones still gets in: at once beside a
	// forgery that failed before, and at once when it is cached.
	if got := check("_ghbroker=" + forged[0] + "; _ghbroker=" + good); got != http.StatusOK {
		t.Errorf("the real session after a failed forgery: %d, want 200", got)
	}
	if got := check("_ghbroker=" + forge(good, 99) + "; _ghbroker=" + good); got != http.StatusOK {
		t.Errorf("the cached real session beside a new forgery: %d, want 200", got)
	}
}

// TestAccessTokenOfAnotherClientRefused is issue #13 finding 4 with real
// tokens: an access token minted for Grafana (aud: the issuer and
// "grafana", as every access token carried) is no gateway credential.
func TestAccessTokenOfAnotherClientRefused(t *testing.T) {
	km, err := keys.NewManager(context.Background(), memory.New(memory.Options{}), keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Options{Issuer: testIssuer, Keys: km})
	if err != nil {
		t.Fatal(err)
	}
	hd := newTestHTTPHandler(t, v, "")
	now := time.Now()
	tok, err := km.Sign(claims.KindAccess, &claims.Claims{Claims: jwt.Claims{Issuer: testIssuer, Subject: "1", Audience: jwt.Audience{testIssuer, "grafana"},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))}, ClientID: "grafana", PreferredUsername: "sre-user", Groups: []string{"acme/sre"}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Host = grafanaHost
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	hd.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("Grafana's access token at the gateway: %d %q, want 401 invalid_token", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

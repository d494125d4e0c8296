package broker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/broker"
	brokeroidc "github.com/ghbroker/ghbroker/broker/oidc"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/store/memory"
)

type fixture struct {
	srv  *httptest.Server
	keys *keys.Manager
}

// newBroker starts a broker on an httptest server whose URL is the issuer.
func newBroker(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{}
	var h http.Handler
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(f.srv.Close)
	st := memory.New(memory.Options{})
	km, err := keys.NewManager(context.Background(), st, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.keys = km
	provider, err := brokeroidc.New(brokeroidc.Config{Issuer: f.srv.URL, Keys: km, JWKSMaxAge: keys.JWKSMaxAge(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Config{Keys: km, Handlers: []broker.Handler{provider}})
	if err != nil {
		t.Fatal(err)
	}
	h = b
	return f
}

func (f *fixture) idToken(t *testing.T) string {
	t.Helper()
	now := time.Now()
	tok, err := f.keys.Sign(claims.KindID, &claims.Claims{Claims: jwt.Claims{
		Issuer: f.srv.URL, Subject: "583231", Audience: jwt.Audience{"grafana"},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour)),
	}, PreferredUsername: "octocat"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestGoOIDCTrustsTheBroker(t *testing.T) {
	f := newBroker(t)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, f.srv.URL)
	if err != nil {
		t.Fatalf("go-oidc NewProvider: %v", err)
	}
	v := provider.Verifier(&oidc.Config{ClientID: "grafana"})
	idt, err := v.Verify(ctx, f.idToken(t))
	if err != nil {
		t.Fatalf("a token the broker signed was refused: %v", err)
	}
	var c claims.Claims
	if err := idt.Claims(&c); err != nil || c.PreferredUsername != "octocat" {
		t.Fatalf("claims %+v, %v", c, err)
	}

	good := f.idToken(t)
	payload := strings.Split(good, ".")[1]
	forged := map[string]string{
		"foreign key":             signForeign(t, f.srv.URL),
		"alg none":                b64json(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." + payload + ".",
		"HS256 with public key":   hs256WithPublicKey(t, f, payload),
		"tampered payload":        strings.Replace(good, payload, b64json(t, map[string]any{"iss": f.srv.URL, "sub": "1", "aud": "grafana", "exp": time.Now().Add(time.Hour).Unix()}), 1),
		"signature of other data": strings.Split(good, ".")[0] + "." + payload + "." + strings.Split(signForeign(t, f.srv.URL), ".")[2],
	}
	for name, tok := range forged {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(ctx, tok); err == nil {
				t.Fatal("go-oidc accepted a forged token")
			}
		})
	}
}

func b64json(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// signForeign signs a well-formed ID token with a key the broker never had.
func signForeign(t *testing.T, issuer string) string {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: issuer, Subject: "1", Audience: jwt.Audience{"grafana"},
		Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// hs256WithPublicKey forges the classic algorithm-confusion token: HMAC
// keyed with the bytes of the broker's own public key.
func hs256WithPublicKey(t *testing.T, f *fixture, payload string) string {
	t.Helper()
	kid := f.keys.Keys().Current.KID
	pub, _ := f.keys.PublicKey(kid)
	der, err := x509.MarshalPKIXPublicKey(pub.Key.(*rsa.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: der},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(raw)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestDiscoveryDocument(t *testing.T) {
	f := newBroker(t)
	resp, err := http.Get(f.srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	// OIDC Discovery §3 REQUIRED metadata that exists at this stage, and
	// the defaults that must be said out loud.
	for _, k := range []string{"issuer", "jwks_uri", "response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("discovery lacks %s", k)
		}
	}
	if doc["issuer"] != f.srv.URL {
		t.Errorf("issuer %v", doc["issuer"])
	}
	if doc["request_uri_parameter_supported"] != false {
		t.Errorf("request_uri_parameter_supported = %v, want false", doc["request_uri_parameter_supported"])
	}
	algs, _ := doc["id_token_signing_alg_values_supported"].([]any)
	if len(algs) == 0 || algs[0] != "RS256" {
		t.Errorf("algs = %v, want RS256", algs)
	}
}

func TestJWKSCacheControl(t *testing.T) {
	f := newBroker(t)
	resp, err := http.Get(f.srv.URL + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=3600" {
		t.Errorf("Cache-Control %q, want max-age=3600 for a 24h rotation", cc)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Errorf("JWKS has %d keys, want current and next", len(set.Keys))
	}
}

func TestHealthAndReadiness(t *testing.T) {
	f := newBroker(t)
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(f.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s = %d", p, resp.StatusCode)
		}
	}
}

// TestHSTS: an https broker tells browsers to stay on https.
func TestHSTS(t *testing.T) {
	st := memory.New(memory.Options{})
	km, err := keys.NewManager(context.Background(), st, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Config{Keys: km, HSTSMaxAge: 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/healthz", "/no-such-page"} {
		rec := httptest.NewRecorder()
		b.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://auth.example.com"+p, nil))
		if got := rec.Header().Get("Strict-Transport-Security"); got != "max-age=31536000" {
			t.Errorf("%s: Strict-Transport-Security %q", p, got)
		}
	}
}

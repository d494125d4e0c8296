package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/keys"
)

// attackTokens are the JWT attacks that jwt_tool and PortSwigger's JWT
// labs list, against a broker signing with ES256: an ECDSA "psychic
// signature" (r = s = 0, CVE-2022-21449), keys and key URLs the token
// brings along (jwk, jku, x5u, x5c: never trusted), an unknown crit, an
// unencoded payload (b64: false), and kid injection.
func attackTokens(tb testing.TB, e *vtEnv) map[string]string {
	tb.Helper()
	_, kid := e.current(tb)
	payload := vtJSON(tb, e.claims(claims.KindSession))
	typ := string(claims.KindSession)
	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	point, err := attacker.PublicKey.Bytes() // 0x04 | X | Y
	if err != nil {
		tb.Fatal(err)
	}
	x := base64.RawURLEncoding.EncodeToString(point[1:33])
	y := base64.RawURLEncoding.EncodeToString(point[33:65])
	jwk := map[string]any{"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid}
	head := func(extra map[string]any) []byte {
		h := map[string]any{"alg": "ES256", "kid": kid, "typ": typ}
		for k, v := range extra {
			h[k] = v
		}
		return vtJSON(tb, h)
	}
	psychic := vtB64(head(nil)) + "." + vtB64(payload) + "." + vtB64(make([]byte, 64))
	return map[string]string{
		"psychic signature r=s=0": psychic,
		"embedded jwk":            vtSignRaw(tb, "ES256", attacker, head(map[string]any{"jwk": jwk}), payload),
		"jku":                     vtSignRaw(tb, "ES256", attacker, head(map[string]any{"jku": "https://evil.example/jwks.json"}), payload),
		"x5u":                     vtSignRaw(tb, "ES256", attacker, head(map[string]any{"x5u": "https://evil.example/cert.pem"}), payload),
		"x5c":                     vtSignRaw(tb, "ES256", attacker, head(map[string]any{"x5c": []string{"MIIBfake"}}), payload),
		"unknown crit":            vtSignRaw(tb, "ES256", attacker, head(map[string]any{"crit": []string{"ghb-future"}, "ghb-future": true}), payload),
		"b64 false":               vtSignRaw(tb, "ES256", attacker, head(map[string]any{"b64": false, "crit": []string{"b64"}}), payload),
		"kid path traversal":      vtSignRaw(tb, "ES256", attacker, vtJSON(tb, map[string]any{"alg": "ES256", "kid": "../../../../dev/null", "typ": typ}), payload),
		"kid sql injection":       vtSignRaw(tb, "ES256", attacker, vtJSON(tb, map[string]any{"alg": "ES256", "kid": "' UNION SELECT 'key", "typ": typ}), payload),
		"kid huge":                vtSignRaw(tb, "ES256", attacker, vtJSON(tb, map[string]any{"alg": "ES256", "kid": strings.Repeat("k", 9000), "typ": typ}), payload),
	}
}

// TestJWTAttacksRefused: every attack token is refused, with one sentinel,
// by the cached and the uncached verifier alike.
func TestJWTAttacksRefused(t *testing.T) {
	e := vtNewEnv(t, keys.ES256)
	for _, v := range []*Verifier{e.verifier(t, Options{}), e.verifier(t, Options{CacheSize: -1})} {
		for name, tok := range attackTokens(t, e) {
			c, err := v.Verify(tok, claims.KindSession)
			if err == nil || c != nil {
				t.Errorf("%s: accepted", name)
				continue
			}
			if !errors.Is(err, ErrSignature) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) {
				t.Errorf("%s: refused with %v, want a signature, key or format error", name, err)
			}
		}
	}
}

// FuzzVerifyAttacks starts from the attack tokens: no mutation of them is
// accepted, because none carries a signature of the broker's key.
func FuzzVerifyAttacks(f *testing.F) {
	e := vtNewEnv(f, keys.ES256)
	for _, tok := range attackTokens(f, e) {
		f.Add(tok)
	}
	v := e.verifier(f, Options{CacheSize: -1})
	f.Fuzz(func(t *testing.T, tok string) {
		if c, err := v.Verify(tok, claims.KindSession); err == nil || c != nil {
			t.Fatalf("accepted %q", tok)
		}
	})
}

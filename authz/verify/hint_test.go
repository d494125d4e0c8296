package verify

import (
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/keys"
)

// TestVerifyIDTokenHint: an id_token_hint is an ID token of ours, for any
// client, accepted after it expired (OIDC RP-Initiated Logout §2), and
// refused for everything else Verify refuses.
func TestVerifyIDTokenHint(t *testing.T) {
	e := vtNewEnv(t, keys.EdDSA)
	v := e.verifier(t, Options{}) // no IDTokenAudiences: Verify refuses every ID token

	id := e.claims(claims.KindID) // aud: grafana
	fresh := e.sign(t, claims.KindID, id)
	expired := e.claims(claims.KindID)
	expired.Expiry = jwt.NewNumericDate(e.clk.Now().Add(-48 * time.Hour))
	old := e.sign(t, claims.KindID, expired)
	other := e.claims(claims.KindID)
	other.Issuer = "https://elsewhere.example.com"
	future := e.claims(claims.KindID)
	future.NotBefore = jwt.NewNumericDate(e.clk.Now().Add(time.Hour))
	noExp := e.claims(claims.KindID)
	noExp.Expiry = nil
	priv, kid := e.current(t)
	payload := vtJSON(t, id)

	for _, tt := range []struct {
		name  string
		token string
		want  error // nil: accepted
	}{
		{"fresh, another client's", fresh, nil},
		{"expired two days ago", old, nil},
		{"session token", e.sign(t, claims.KindSession, e.claims(claims.KindSession)), ErrType},
		{"access token", e.sign(t, claims.KindAccess, e.claims(claims.KindAccess)), ErrType},
		{"another issuer", e.sign(t, claims.KindID, other), ErrIssuer},
		{"not yet valid", e.sign(t, claims.KindID, future), ErrNotYetValid},
		{"no exp", e.sign(t, claims.KindID, noExp), ErrExpired},
		{"unknown kid", vtSignRaw(t, "EdDSA", priv, vtHeader(t, "EdDSA", "nope", "JWT"), payload), ErrUnknownKey},
		{"alg none", vtSignRaw(t, "none", nil, vtHeader(t, "none", kid, "JWT"), payload), ErrAlgorithm},
		{"tampered", vtFlipSignature(fresh), ErrSignature},
		{"garbage", "not.a.jws", ErrMalformed},
		{"empty", "", ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.VerifyIDTokenHint(tt.token)
			if tt.want != nil {
				if c != nil {
					t.Fatalf("claims with error %v", err)
				}
				vtCheckErr(t, tt.token, err, tt.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "583231" || !c.Audience.Contains("grafana") {
				t.Errorf("claims = %+v", c)
			}
		})
	}

	// The hint path is not Verify's: the same tokens stay refused there,
	// and nothing the hint verified is served from the cache.
	if _, err := v.Verify(fresh, claims.KindID); !errors.Is(err, ErrAudience) {
		t.Errorf("Verify(ID token, no audiences) = %v, want ErrAudience", err)
	}
	if _, err := e.verifier(t, Options{IDTokenAudiences: []string{"grafana"}}).Verify(old, claims.KindID); !errors.Is(err, ErrExpired) {
		t.Errorf("Verify(expired ID token) = %v, want ErrExpired", err)
	}
	if hits, _, size := v.CacheStats(); hits != 0 || size != 0 {
		t.Errorf("cache after hints: %d hits, %d entries", hits, size)
	}
}

// vtFlipSignature changes one character in the middle of the signature,
// so that the decoded bytes differ for certain (a last character may
// carry padding bits only).
func vtFlipSignature(tok string) string {
	i := len(tok) - 10
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

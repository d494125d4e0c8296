package keys_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/internal/testclock"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/memory"
)

func newManager(t *testing.T, alg string) (*keys.Manager, *testclock.Clock, store.KeyStore) {
	t.Helper()
	clk := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	st := memory.New(memory.Options{Now: clk.Now})
	m, err := keys.NewManager(context.Background(), st, keys.Options{
		Algorithm: alg, RotateEvery: 24 * time.Hour, MaxTokenLifetime: time.Hour, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, clk, st
}

func jwksKIDs(t *testing.T, m *keys.Manager) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(m.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Fatalf("JWKS publishes a private key %s", k.KeyID)
		}
		if k.Use != "sig" || k.Algorithm == "" {
			t.Errorf("key %s: use %q alg %q", k.KeyID, k.Use, k.Algorithm)
		}
		kids = append(kids, k.KeyID)
	}
	return kids
}

func TestSignedTokenVerifies(t *testing.T) {
	for _, alg := range []string{keys.RS256, keys.ES256, keys.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			m, clk, _ := newManager(t, alg)
			c := &claims.Claims{Claims: jwt.Claims{Issuer: "https://auth.example.com", Subject: "42",
				Expiry: jwt.NewNumericDate(clk.Now().Add(time.Hour))}, Groups: []string{"acme"}}
			tok, err := m.Sign(claims.KindSession, c)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			h := parsed.Headers[0]
			if h.KeyID != m.Keys().Current.KID {
				t.Errorf("kid %q, want current %q", h.KeyID, m.Keys().Current.KID)
			}
			if typ := h.ExtraHeaders[jose.HeaderType]; typ != string(claims.KindSession) {
				t.Errorf("typ = %v", typ)
			}
			pub, ok := m.PublicKey(h.KeyID)
			if !ok {
				t.Fatal("current key not published")
			}
			var got claims.Claims
			if err := parsed.Claims(pub.Key, &got); err != nil {
				t.Fatal(err)
			}
			if got.Subject != "42" || !got.InGroup("acme") {
				t.Errorf("claims = %+v", got)
			}
		})
	}
}

func TestKIDIsThumbprint(t *testing.T) {
	m, _, _ := newManager(t, keys.RS256)
	pub, _ := m.PublicKey(m.Keys().Current.KID)
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Keys().Current.KID, base64.RawURLEncoding.EncodeToString(tp); got != want {
		t.Errorf("kid %q is not the RFC 7638 thumbprint %q", got, want)
	}
}

func TestRotationLifecycle(t *testing.T) {
	ctx := context.Background()
	m, clk, _ := newManager(t, keys.RS256)
	k0 := m.Keys()
	if k0.Current == nil || k0.Next == nil {
		t.Fatal("a new store must get a current and a next key")
	}
	if got := jwksKIDs(t, m); len(got) != 2 || got[0] != k0.Current.KID || got[1] != k0.Next.KID {
		t.Fatalf("JWKS = %v, want current and next", got)
	}
	// Not due: nothing changes.
	clk.Advance(23 * time.Hour)
	if rotated, err := m.Rotate(ctx, false); err != nil || rotated {
		t.Fatalf("early rotate: %v %v", rotated, err)
	}
	// Due: next becomes current, current becomes previous.
	clk.Advance(time.Hour)
	if rotated, err := m.Rotate(ctx, false); err != nil || !rotated {
		t.Fatalf("due rotate: %v %v", rotated, err)
	}
	k1 := m.Keys()
	if k1.Current.KID != k0.Next.KID {
		t.Errorf("current %s, want the old next %s", k1.Current.KID, k0.Next.KID)
	}
	if len(k1.Previous) != 1 || k1.Previous[0].KID != k0.Current.KID {
		t.Fatalf("previous = %+v", k1.Previous)
	}
	if got := jwksKIDs(t, m); len(got) != 3 {
		t.Errorf("JWKS after rotation = %v, want current, next, previous", got)
	}
	// The previous key leaves once every token it signed has expired.
	clk.Advance(time.Hour + 2*time.Minute)
	if _, err := m.Rotate(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := m.Keys().Previous; len(got) != 0 {
		t.Errorf("expired previous keys kept: %+v", got)
	}
}

func TestRestartKeepsKeys(t *testing.T) {
	ctx := context.Background()
	m, clk, st := newManager(t, keys.ES256)
	m2, err := keys.NewManager(ctx, st, keys.Options{Algorithm: keys.ES256, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if string(m.JWKS()) != string(m2.JWKS()) {
		t.Error("a second manager on the same store publishes different keys")
	}
}

func TestAlgorithmChangeReplacesNextOnly(t *testing.T) {
	ctx := context.Background()
	m, clk, st := newManager(t, keys.RS256)
	before := m.Keys()
	m2, err := keys.NewManager(ctx, st, keys.Options{Algorithm: keys.ES256, Now: clk.Now, RotateEvery: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	after := m2.Keys()
	if after.Current.KID != before.Current.KID {
		t.Error("changing the algorithm must not replace the signing key before its rotation")
	}
	if after.Next.Algorithm != keys.ES256 {
		t.Errorf("next key alg = %s, want ES256", after.Next.Algorithm)
	}
}

func TestUnsupportedAlgorithm(t *testing.T) {
	_, err := keys.NewManager(context.Background(), memory.New(memory.Options{}), keys.Options{Algorithm: "HS256"})
	if err == nil {
		t.Fatal("HS256 accepted")
	}
}

// TestConcurrentRotateAndSign: signing never fails while rotations run,
// and every token verifies against the key set published after it.
func TestConcurrentRotateAndSign(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newManager(t, keys.EdDSA)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 20 {
			if _, err := m.Rotate(ctx, true); err != nil {
				t.Error(err)
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for range 200 {
				tok, err := m.Sign(claims.KindID, &claims.Claims{Claims: jwt.Claims{Subject: "1"}})
				if err != nil {
					t.Error(err)
					return
				}
				p, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
				if err != nil {
					t.Error(err)
					return
				}
				if _, ok := m.PublicKey(p.Headers[0].KeyID); !ok {
					t.Errorf("token signed by %s, which is not published", p.Headers[0].KeyID)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestJWKSMaxAge(t *testing.T) {
	if got := keys.JWKSMaxAge(24 * time.Hour); got != time.Hour {
		t.Errorf("24h rotation: %s", got)
	}
	if got := keys.JWKSMaxAge(time.Hour); got != 15*time.Minute {
		t.Errorf("1h rotation: %s", got)
	}
}

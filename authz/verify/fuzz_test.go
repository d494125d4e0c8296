package verify

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/store/memory"
)

// FuzzVerify feeds arbitrary strings to Verify for every kind, through a
// cached and an uncached Verifier. Neither may panic; they must agree; and
// a string is accepted only if it is, byte for byte, a token the test
// signed, which go-jose verifies too.
//
// Keys and tokens are deterministic (Ed25519 from fixed seeds, a fixed
// clock), so that every fuzzing worker process signs the same seeds the
// coordinator does.
func FuzzVerify(f *testing.F) {
	clk := vtNewClock()
	var n byte
	m, err := keys.NewManager(context.Background(), memory.New(memory.Options{Now: clk.Now}), keys.Options{
		Algorithm: keys.EdDSA, Now: clk.Now,
		Generate: func(string) (crypto.Signer, error) {
			n++
			seed := sha256.Sum256([]byte{'f', 'u', 'z', 'z', n})
			return ed25519.NewKeyFromSeed(seed[:]), nil
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	e := &vtEnv{clk: clk, m: m}
	kinds := []claims.Kind{claims.KindSession, claims.KindAccess, claims.KindID, "bogus"}
	signed := map[string]bool{}
	var valid []string
	for _, kind := range kinds[:3] {
		tok := e.sign(f, kind, e.claims(kind))
		signed[tok] = true
		valid = append(valid, tok)
	}
	// Signed by us but refused: expired, and for another audience.
	expired := e.claims(claims.KindSession)
	expired.Expiry = jwt.NewNumericDate(clk.Now().Add(-24 * time.Hour))
	other := e.claims(claims.KindAccess)
	other.Audience = jwt.Audience{"https://elsewhere.example.com"}
	for _, tok := range []string{e.sign(f, claims.KindSession, expired), e.sign(f, claims.KindAccess, other)} {
		signed[tok] = true
		valid = append(valid, tok)
	}

	priv, kid := e.current(f)
	pub := priv.Public()
	payload := vtJSON(f, e.claims(claims.KindSession))
	seeds := []string{"", ".", "..", "...", "a.b.c", "e30.e30.", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("A", 100)}
	for _, tok := range valid {
		parts := strings.Split(tok, ".")
		seeds = append(seeds,
			tok,
			tok[:len(tok)-1],
			tok+"A",
			tok+".",
			parts[0]+"."+parts[1],
			parts[0]+"."+parts[1]+".",
			parts[1]+"."+parts[0]+"."+parts[2],
			parts[0]+"."+strings.Split(valid[0], ".")[1]+"."+parts[2],
		)
	}
	seeds = append(seeds,
		vtSignRaw(f, "none", nil, vtHeader(f, "none", kid, string(claims.KindSession)), payload),
		vtSignRaw(f, "HS256", []byte(pub.(ed25519.PublicKey)), vtHeader(f, "HS256", kid, string(claims.KindSession)), payload),
		vtSignRaw(f, "EdDSA", priv, vtHeader(f, "EdDSA", kid, "JWT"), payload),
		vtSignRaw(f, "EdDSA", priv, []byte(`{"alg":"EdDSA","kid":"`+kid+`","typ":"ghbroker-session+jwt","crit":["exp"]}`), payload),
	)
	for _, s := range seeds {
		f.Add(s)
	}

	cached := e.verifier(f, Options{IDTokenAudiences: []string{"grafana"}, CacheSize: 8})
	uncached := e.verifier(f, Options{IDTokenAudiences: []string{"grafana"}, CacheSize: -1})
	algs := []jose.SignatureAlgorithm{jose.EdDSA, jose.RS256, jose.ES256}

	f.Fuzz(func(t *testing.T, tok string) {
		for _, kind := range kinds {
			c1, err1 := cached.Verify(tok, kind)
			c2, err2 := uncached.Verify(tok, kind)
			for _, r := range []struct {
				c   *claims.Claims
				err error
			}{{c1, err1}, {c2, err2}} {
				if r.err != nil {
					if r.c != nil {
						t.Fatalf("claims with error %v", r.err)
					}
					var matched []error
					for _, s := range vtSentinels {
						if errors.Is(r.err, s) {
							matched = append(matched, s)
						}
					}
					if len(matched) != 1 {
						t.Fatalf("error %q matches %d sentinels", r.err, len(matched))
					}
					continue
				}
				if r.c == nil {
					t.Fatal("no claims and no error")
				}
				if !signed[tok] {
					t.Fatalf("accepted a %s token the test never signed: %q", kind, tok)
				}
			}
			if fmt.Sprint(vtSentinelOf(err1)) != fmt.Sprint(vtSentinelOf(err2)) {
				t.Fatalf("cached and uncached disagree: %v / %v", err1, err2)
			}
			if err1 == nil {
				// An independent implementation agrees.
				p, err := jwt.ParseSigned(tok, algs)
				if err != nil {
					t.Fatalf("go-jose cannot parse an accepted token: %v", err)
				}
				k, _ := m.PublicKey(p.Headers[0].KeyID)
				var c claims.Claims
				if err := p.Claims(k, &c); err != nil {
					t.Fatalf("go-jose does not verify an accepted token: %v", err)
				}
			}
		}
	})
}

// vtSentinelOf is the sentinel err matches, nil for nil.
func vtSentinelOf(err error) error {
	for _, s := range vtSentinels {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}

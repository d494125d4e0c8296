package verify

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/keys"
)

// Benchmarks of Verify. The target: a cache hit costs about a map lookup
// and allocates nothing; an uncached RS256 check costs at most 1.5 times
// BenchmarkRS256Signature, the bare signature verification.

// vtBenchToken is a realistic session token (some 1.2 KB) signed with
// alg, valid for an hour of real time; id tells tokens apart.
func (e *vtEnv) benchToken(b *testing.B, id int) string {
	c := e.claims(claims.KindSession)
	now := time.Now()
	c.IssuedAt, c.NotBefore, c.Expiry = jwt.NewNumericDate(now), jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(time.Hour))
	c.ID = fmt.Sprint(id)
	for i := range 12 {
		c.Groups = append(c.Groups, fmt.Sprintf("acme/team-%02d", i))
	}
	return e.sign(b, claims.KindSession, c)
}

func vtBenchToken(b *testing.B, alg string) (*vtEnv, string) {
	e := vtNewEnv(b, alg)
	return e, e.benchToken(b, 0)
}

func BenchmarkVerifyCached(b *testing.B) {
	e, tok := vtBenchToken(b, keys.RS256)
	v := e.verifier(b, Options{Now: time.Now})
	if _, err := v.Verify(tok, claims.KindSession); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(tok)))
	for b.Loop() {
		if _, err := v.Verify(tok, claims.KindSession); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapLookup is the yardstick of a cache hit: one lookup of a
// token in a plain map of a thousand tokens, keyed by the token.
func BenchmarkMapLookup(b *testing.B) {
	_, tok := vtBenchToken(b, keys.EdDSA)
	m := map[string]*claims.Claims{}
	for i := range 1000 {
		m[fmt.Sprintf("%s%08d", tok[:len(tok)-8], i)] = &claims.Claims{}
	}
	key := fmt.Sprintf("%s%08d", tok[:len(tok)-8], 500) // a different string, as the next request brings
	b.ReportAllocs()
	for b.Loop() {
		if m[key] == nil {
			b.Fatal("miss")
		}
	}
}

func BenchmarkVerifyCachedParallel(b *testing.B) {
	e, tok := vtBenchToken(b, keys.RS256)
	v := e.verifier(b, Options{Now: time.Now})
	// A working set of distinct tokens, as many users would present.
	toks := []string{tok}
	for i := range 255 {
		toks = append(toks, e.benchToken(b, i+1))
	}
	for _, t := range toks {
		if _, err := v.Verify(t, claims.KindSession); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := v.Verify(toks[i&255], claims.KindSession); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func vtBenchUncached(b *testing.B, alg string) {
	e, tok := vtBenchToken(b, alg)
	v := e.verifier(b, Options{Now: time.Now, CacheSize: -1})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok, claims.KindSession); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyUncachedRS256(b *testing.B) { vtBenchUncached(b, keys.RS256) }
func BenchmarkVerifyUncachedES256(b *testing.B) { vtBenchUncached(b, keys.ES256) }
func BenchmarkVerifyUncachedEdDSA(b *testing.B) { vtBenchUncached(b, keys.EdDSA) }

// BenchmarkRS256Signature is the baseline: one raw RS256 verification
// (RFC 7518 §3.3) of the same token with crypto/rsa, nothing else.
func BenchmarkRS256Signature(b *testing.B) {
	e, tok := vtBenchToken(b, keys.RS256)
	dot := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:dot])
	sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	priv, _ := e.current(b)
	pub := priv.Public().(*rsa.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

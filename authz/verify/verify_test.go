package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/internal/testclock"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/store/memory"
)

// Test helpers of verify_test.go, cache_test.go, remote_test.go and
// fuzz_test.go are prefixed vt so that they never meet the names of the
// package's other test files.

const vtIssuer = "https://auth.example.com"

// vtClock is a hand-driven clock.
type vtClock = testclock.Clock

func vtNewClock() *vtClock { return testclock.New(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)) }

// vtEnv is a key manager with its clock, as the broker runs it.
type vtEnv struct {
	clk *vtClock
	m   *keys.Manager
}

func vtNewEnv(tb testing.TB, alg string) *vtEnv {
	tb.Helper()
	clk := vtNewClock()
	m, err := keys.NewManager(context.Background(), memory.New(memory.Options{Now: clk.Now}), keys.Options{
		Algorithm: alg, RotateEvery: 24 * time.Hour, MaxTokenLifetime: 2 * time.Hour, Now: clk.Now,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return &vtEnv{clk: clk, m: m}
}

// verifier returns a Verifier over the manager's keys and clock.
func (e *vtEnv) verifier(tb testing.TB, opts Options) *Verifier {
	tb.Helper()
	opts.Issuer = vtIssuer
	if opts.Keys == nil {
		opts.Keys = e.m
	}
	if opts.Now == nil {
		opts.Now = e.clk.Now
	}
	v, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// claims returns valid claims for a token of kind.
func (e *vtEnv) claims(kind claims.Kind) *claims.Claims {
	now := e.clk.Now()
	c := &claims.Claims{
		Claims: jwt.Claims{
			Issuer: vtIssuer, Subject: "583231", ID: fmt.Sprint(now.UnixNano()),
			Expiry: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
		},
		PreferredUsername: "octocat", Name: "The Octocat", Email: "octocat@github.com",
		Groups: []string{"acme", "acme/platform", "acme/sre", "widgets"},
	}
	switch kind {
	case claims.KindID:
		c.Audience = jwt.Audience{"grafana"}
		c.Nonce = "n-0S6_WzA2Mj"
	case claims.KindAccess:
		c.Audience = jwt.Audience{vtIssuer, "grafana"}
		c.ClientID, c.Scope = "grafana", "openid profile email groups"
	default:
		c.Audience = jwt.Audience{vtIssuer}
		c.SessionID = "s-1"
	}
	return c
}

// sign signs c as kind with the current key.
func (e *vtEnv) sign(tb testing.TB, kind claims.Kind, c any) string {
	tb.Helper()
	tok, err := e.m.Sign(kind, c)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// current returns the current private key and its kid.
func (e *vtEnv) current(tb testing.TB) (crypto.Signer, string) {
	tb.Helper()
	k := e.m.Keys().Current
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(k.PrivateJWK); err != nil {
		tb.Fatal(err)
	}
	return jwk.Key.(crypto.Signer), k.KID
}

// vtB64 is base64url without padding.
func vtB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// vtJSON encodes v or fails.
func vtJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// vtSignRaw builds a compact JWS from a raw header and payload, signed with
// key under alg: full control over every byte, for tokens the manager would
// never make. key is a crypto.Signer, or []byte for HS256; alg "none" signs
// nothing.
func vtSignRaw(tb testing.TB, alg string, key any, header, payload []byte) string {
	tb.Helper()
	input := vtB64(header) + "." + vtB64(payload)
	var sig []byte
	var err error
	digest := sha256.Sum256([]byte(input))
	switch alg {
	case "none":
	case "HS256":
		mac := hmac.New(sha256.New, key.([]byte))
		mac.Write([]byte(input))
		sig = mac.Sum(nil)
	case "RS256":
		sig, err = rsa.SignPKCS1v15(nil, key.(*rsa.PrivateKey), crypto.SHA256, digest[:])
	case "ES256":
		var r, s *big.Int
		r, s, err = ecdsa.Sign(nil, key.(*ecdsa.PrivateKey), digest[:])
		if err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	case "EdDSA":
		sig = ed25519.Sign(key.(ed25519.PrivateKey), []byte(input))
	default:
		tb.Fatalf("vtSignRaw: alg %s", alg)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + vtB64(sig)
}

// vtHeader is a JOSE header for vtSignRaw.
func vtHeader(tb testing.TB, alg, kid, typ string) []byte {
	tb.Helper()
	return vtJSON(tb, map[string]string{"alg": alg, "kid": kid, "typ": typ})
}

// vtSentinels are the errors Verify returns, one per failed check.
var vtSentinels = []error{ErrMalformed, ErrAlgorithm, ErrUnknownKey, ErrSignature, ErrType,
	ErrIssuer, ErrAudience, ErrExpired, ErrNotYetValid}

// vtCheckErr fails unless err matches want and no other sentinel, and its
// text repeats nothing of the token.
func vtCheckErr(tb testing.TB, token string, err, want error) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("err = %v, want %v", err, want)
	}
	for _, s := range vtSentinels {
		if s != want && errors.Is(err, s) {
			tb.Errorf("err %v also matches %v", err, s)
		}
	}
	msg := err.Error()
	for seg := range strings.SplitSeq(token, ".") {
		for i := 0; i+12 <= len(seg); i += 12 {
			if strings.Contains(msg, seg[i:i+12]) {
				tb.Fatalf("error %q repeats token contents", msg)
			}
		}
	}
}

func TestVerify(t *testing.T) {
	e := vtNewEnv(t, keys.RS256)
	v := e.verifier(t, Options{IDTokenAudiences: []string{"grafana"}, CacheSize: -1})
	priv, kid := e.current(t)
	now := e.clk.Now()

	// with signs valid claims of kind changed by f.
	with := func(kind claims.Kind, f func(c *claims.Claims)) string {
		c := e.claims(kind)
		f(c)
		return e.sign(t, kind, c)
	}
	session := e.sign(t, claims.KindSession, e.claims(claims.KindSession))
	access := e.sign(t, claims.KindAccess, e.claims(claims.KindAccess))
	idToken := e.sign(t, claims.KindID, e.claims(claims.KindID))
	sessionPayload := vtJSON(t, e.claims(claims.KindSession))
	accessPayload := vtJSON(t, e.claims(claims.KindAccess))

	// Foreign keys that claim our kid.
	foreignRSA, err := keys.GenerateKey(keys.RS256)
	if err != nil {
		t.Fatal(err)
	}
	foreignEC, err := keys.GenerateKey(keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubJWK, _ := e.m.PublicKey(kid)
	pubJWKJSON, err := pubJWK.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	sessionHeader := vtHeader(t, "RS256", kid, string(claims.KindSession))
	flipLast := func(tok string) string { // keeps the decoded bytes: only unused bits change
		b := []byte(tok)
		b[len(b)-1] ^= 1
		return string(b)
	}
	tamper := func(tok string) string {
		parts := strings.Split(tok, ".")
		c := e.claims(claims.KindSession)
		c.Subject = "1"
		parts[1] = vtB64(vtJSON(t, c))
		return strings.Join(parts, ".")
	}

	tests := []struct {
		name  string
		token string
		kind  claims.Kind
		want  error // nil: accepted
	}{
		{"session", session, claims.KindSession, nil},
		{"access", access, claims.KindAccess, nil},
		{"ID token for an accepted client", idToken, claims.KindID, nil},
		{"access typ application/at+jwt", vtSignRaw(t, "RS256", priv, vtHeader(t, "RS256", kid, "application/at+jwt"), accessPayload), claims.KindAccess, nil},
		{"access typ in capitals", vtSignRaw(t, "RS256", priv, vtHeader(t, "RS256", kid, "AT+JWT"), accessPayload), claims.KindAccess, nil},
		{"exp within leeway", with(claims.KindSession, func(c *claims.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-29 * time.Second)) }), claims.KindSession, nil},
		{"nbf within leeway", with(claims.KindSession, func(c *claims.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(29 * time.Second)) }), claims.KindSession, nil},
		{"no nbf, no iat", with(claims.KindSession, func(c *claims.Claims) { c.NotBefore, c.IssuedAt = nil, nil }), claims.KindSession, nil},

		{"wrong issuer", with(claims.KindSession, func(c *claims.Claims) { c.Issuer = "https://evil.example.com" }), claims.KindSession, ErrIssuer},
		{"issuer with a trailing slash", with(claims.KindSession, func(c *claims.Claims) { c.Issuer = vtIssuer + "/" }), claims.KindSession, ErrIssuer},
		{"no issuer", with(claims.KindSession, func(c *claims.Claims) { c.Issuer = "" }), claims.KindSession, ErrIssuer},
		{"session for another audience", with(claims.KindSession, func(c *claims.Claims) { c.Audience = jwt.Audience{"https://other.example.com"} }), claims.KindSession, ErrAudience},
		{"session without aud", with(claims.KindSession, func(c *claims.Claims) { c.Audience = nil }), claims.KindSession, ErrAudience},
		{"access for the client only", with(claims.KindAccess, func(c *claims.Claims) { c.Audience = jwt.Audience{"grafana"} }), claims.KindAccess, ErrAudience},
		{"ID token for another client", with(claims.KindID, func(c *claims.Claims) { c.Audience = jwt.Audience{"argocd"} }), claims.KindID, ErrAudience},
		{"ID token for the issuer", with(claims.KindID, func(c *claims.Claims) { c.Audience = jwt.Audience{vtIssuer} }), claims.KindID, ErrAudience},
		{"expired", with(claims.KindSession, func(c *claims.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-31 * time.Second)) }), claims.KindSession, ErrExpired},
		{"no exp", with(claims.KindSession, func(c *claims.Claims) { c.Expiry = nil }), claims.KindSession, ErrExpired},
		{"nbf in the future", with(claims.KindSession, func(c *claims.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Minute)) }), claims.KindSession, ErrNotYetValid},
		{"iat in the future", with(claims.KindSession, func(c *claims.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Minute)) }), claims.KindSession, ErrNotYetValid},

		{"unknown kid", vtSignRaw(t, "RS256", priv, vtHeader(t, "RS256", "nope", string(claims.KindSession)), sessionPayload), claims.KindSession, ErrUnknownKey},
		{"no kid", vtSignRaw(t, "RS256", priv, vtJSON(t, map[string]string{"alg": "RS256", "typ": string(claims.KindSession)}), sessionPayload), claims.KindSession, ErrUnknownKey},
		{"foreign key with our kid", vtSignRaw(t, "RS256", foreignRSA, sessionHeader, sessionPayload), claims.KindSession, ErrSignature},
		{"tampered claims", tamper(session), claims.KindSession, ErrSignature},
		{"signature of another token", strings.Join(append(strings.Split(session, ".")[:2], strings.Split(access, ".")[2]), "."), claims.KindSession, ErrSignature},
		{"empty signature", strings.Join(append(strings.Split(session, ".")[:2], ""), "."), claims.KindSession, ErrSignature},

		{"alg none", vtSignRaw(t, "none", nil, vtHeader(t, "none", kid, string(claims.KindSession)), sessionPayload), claims.KindSession, ErrAlgorithm},
		{"alg None", vtSignRaw(t, "none", nil, vtHeader(t, "None", kid, string(claims.KindSession)), sessionPayload), claims.KindSession, ErrAlgorithm},
		{"no alg", vtSignRaw(t, "none", nil, vtJSON(t, map[string]string{"kid": kid, "typ": string(claims.KindSession)}), sessionPayload), claims.KindSession, ErrAlgorithm},
		{"HS256 keyed with the public key PEM", vtSignRaw(t, "HS256", pubPEM, vtHeader(t, "HS256", kid, string(claims.KindSession)), sessionPayload), claims.KindSession, ErrAlgorithm},
		{"HS256 keyed with the public key DER", vtSignRaw(t, "HS256", pubDER, vtHeader(t, "HS256", kid, string(claims.KindSession)), sessionPayload), claims.KindSession, ErrAlgorithm},
		{"HS256 keyed with the public JWK", vtSignRaw(t, "HS256", pubJWKJSON, vtHeader(t, "HS256", kid, string(claims.KindSession)), sessionPayload), claims.KindSession, ErrAlgorithm},
		{"ES256 header on our RS256 key", vtSignRaw(t, "ES256", foreignEC, vtHeader(t, "ES256", kid, string(claims.KindSession)), sessionPayload), claims.KindSession, ErrAlgorithm},
		{"RS384, not accepted", vtSignRaw(t, "RS256", priv, vtHeader(t, "RS384", kid, string(claims.KindSession)), sessionPayload), claims.KindSession, ErrAlgorithm},

		{"ID token as session", idToken, claims.KindSession, ErrType},
		{"ID token as access", idToken, claims.KindAccess, ErrType},
		{"session as access", session, claims.KindAccess, ErrType},
		{"session as ID token", session, claims.KindID, ErrType},
		{"access as session", access, claims.KindSession, ErrType},
		{"access as ID token", access, claims.KindID, ErrType},
		{"no typ", vtSignRaw(t, "RS256", priv, vtJSON(t, map[string]string{"alg": "RS256", "kid": kid}), sessionPayload), claims.KindSession, ErrType},
		{"typ JWT as session", vtSignRaw(t, "RS256", priv, vtHeader(t, "RS256", kid, "JWT"), sessionPayload), claims.KindSession, ErrType},
		{"typ application/x/at+jwt", vtSignRaw(t, "RS256", priv, vtHeader(t, "RS256", kid, "application/x/at+jwt"), accessPayload), claims.KindAccess, ErrType},
		{"unknown kind", session, claims.Kind("refresh"), ErrType},

		{"empty", "", claims.KindSession, ErrMalformed},
		{"garbage", "not a token", claims.KindSession, ErrMalformed},
		{"two segments", strings.Join(strings.Split(session, ".")[:2], "."), claims.KindSession, ErrMalformed},
		{"four segments", session + ".AAAA", claims.KindSession, ErrMalformed},
		{"dots only", "..", claims.KindSession, ErrMalformed},
		{"oversize", strings.Repeat("A", defaultMaxTokenBytes+1), claims.KindSession, ErrMalformed},
		{"oversize valid token", session + strings.Repeat("A", defaultMaxTokenBytes), claims.KindSession, ErrMalformed},
		{"padding", session + "==", claims.KindSession, ErrMalformed},
		{"non-canonical base64", flipLast(session), claims.KindSession, ErrMalformed},
		{"line break", session[:20] + "\n" + session[20:], claims.KindSession, ErrMalformed},
		{"space", " " + session, claims.KindSession, ErrMalformed},
		{"standard base64 alphabet", session[:len(session)-2] + "+/", claims.KindSession, ErrMalformed},
		{"JWS JSON serialization", `{"payload":"e30","protected":"e30","signature":"AA"}`, claims.KindSession, ErrMalformed},
		{"header not JSON", vtSignRaw(t, "RS256", priv, []byte("alg=RS256"), sessionPayload), claims.KindSession, ErrMalformed},
		{"header JSON array", vtSignRaw(t, "RS256", priv, []byte(`["RS256"]`), sessionPayload), claims.KindSession, ErrMalformed},
		{"header with crit", vtSignRaw(t, "RS256", priv, vtJSON(t, map[string]any{"alg": "RS256", "kid": kid, "typ": string(claims.KindSession), "crit": []string{"exp"}}), sessionPayload), claims.KindSession, ErrMalformed},
		{"header with x5c", vtSignRaw(t, "RS256", priv, vtJSON(t, map[string]any{"alg": "RS256", "kid": kid, "typ": string(claims.KindSession), "x5c": []string{"AAAA"}}), sessionPayload), claims.KindSession, ErrMalformed},
		{"header with ALG and alg", vtSignRaw(t, "RS256", priv, []byte(`{"alg":"RS256","kid":"`+kid+`","typ":"ghbroker-session+jwt","ALG":"RS256"}`), sessionPayload), claims.KindSession, ErrMalformed},
		{"header with trailing data", vtSignRaw(t, "RS256", priv, append(sessionHeader, []byte(`{}`)...), sessionPayload), claims.KindSession, ErrMalformed},
		{"payload not JSON", vtSignRaw(t, "RS256", priv, sessionHeader, []byte("hello")), claims.KindSession, ErrMalformed},
		{"payload JSON array", vtSignRaw(t, "RS256", priv, sessionHeader, []byte(`[1]`)), claims.KindSession, ErrMalformed},
		{"exp not a number", vtSignRaw(t, "RS256", priv, sessionHeader, []byte(`{"iss":"`+vtIssuer+`","aud":"`+vtIssuer+`","exp":"tomorrow"}`)), claims.KindSession, ErrMalformed},
		{"empty payload", vtSignRaw(t, "RS256", priv, sessionHeader, nil), claims.KindSession, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.token, tt.kind)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c == nil || c.Subject != "583231" || !c.InGroup("acme/sre") {
					t.Fatalf("claims = %+v", c)
				}
				return
			}
			if c != nil {
				t.Errorf("claims returned with an error")
			}
			vtCheckErr(t, tt.token, err, tt.want)
		})
	}
}

func TestVerifyExpiredError(t *testing.T) {
	e := vtNewEnv(t, keys.ES256)
	v := e.verifier(t, Options{})
	c := e.claims(claims.KindSession)
	exp := e.clk.Now().Add(time.Minute).Truncate(time.Second)
	c.Expiry = jwt.NewNumericDate(exp)
	tok := e.sign(t, claims.KindSession, c)
	if _, err := v.Verify(tok, claims.KindSession); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute + defaultLeeway + time.Second)
	for _, pass := range []string{"cached", "uncached"} {
		_, err := v.Verify(tok, claims.KindSession)
		var te *TokenExpiredError
		if !errors.As(err, &te) || !te.Expiry.Equal(exp) || !errors.Is(err, ErrExpired) {
			t.Fatalf("%s: err = %v (%T), want a TokenExpiredError at %s", pass, err, err, exp)
		}
	}
}

func TestVerifyIDTokenAudiences(t *testing.T) {
	e := vtNewEnv(t, keys.EdDSA)
	id := e.sign(t, claims.KindID, e.claims(claims.KindID)) // aud: grafana
	tests := []struct {
		name string
		auds []string
		want error
	}{
		{"none configured", nil, ErrAudience},
		{"another client", []string{"argocd"}, ErrAudience},
		{"the client", []string{"grafana"}, nil},
		{"among others", []string{"argocd", "grafana"}, nil},
		{"case differs", []string{"Grafana"}, ErrAudience},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := e.verifier(t, Options{IDTokenAudiences: tt.auds})
			_, err := v.Verify(id, claims.KindID)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			vtCheckErr(t, id, err, tt.want)
		})
	}
}

func TestVerifyAlgorithms(t *testing.T) {
	for _, alg := range []string{keys.RS256, keys.ES256, keys.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			e := vtNewEnv(t, alg)
			tok := e.sign(t, claims.KindSession, e.claims(claims.KindSession))
			if _, err := e.verifier(t, Options{}).Verify(tok, claims.KindSession); err != nil {
				t.Fatalf("default algorithms: %v", err)
			}
			if _, err := e.verifier(t, Options{Algorithms: []string{alg}}).Verify(tok, claims.KindSession); err != nil {
				t.Fatalf("only %s: %v", alg, err)
			}
			other := keys.RS256
			if alg == keys.RS256 {
				other = keys.EdDSA
			}
			_, err := e.verifier(t, Options{Algorithms: []string{other}}).Verify(tok, claims.KindSession)
			vtCheckErr(t, tok, err, ErrAlgorithm)
		})
	}
}

func TestVerifyMaxTokenBytes(t *testing.T) {
	e := vtNewEnv(t, keys.EdDSA)
	tok := e.sign(t, claims.KindSession, e.claims(claims.KindSession))
	if _, err := e.verifier(t, Options{MaxTokenBytes: len(tok)}).Verify(tok, claims.KindSession); err != nil {
		t.Fatal(err)
	}
	_, err := e.verifier(t, Options{MaxTokenBytes: len(tok) - 1}).Verify(tok, claims.KindSession)
	vtCheckErr(t, tok, err, ErrMalformed)
}

func TestNewVerifierOptions(t *testing.T) {
	e := vtNewEnv(t, keys.EdDSA)
	tests := []struct {
		name string
		opts Options
	}{
		{"no issuer", Options{Keys: e.m}},
		{"no keys", Options{Issuer: vtIssuer}},
		{"alg none", Options{Issuer: vtIssuer, Keys: e.m, Algorithms: []string{"none"}}},
		{"HS256", Options{Issuer: vtIssuer, Keys: e.m, Algorithms: []string{"RS256", "HS256"}}},
		{"unknown alg", Options{Issuer: vtIssuer, Keys: e.m, Algorithms: []string{"rs256"}}},
		{"negative leeway", Options{Issuer: vtIssuer, Keys: e.m, Leeway: -time.Second}},
		{"negative MaxTokenBytes", Options{Issuer: vtIssuer, Keys: e.m, MaxTokenBytes: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.opts); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestVerifyDuringKeyRotation: while the manager rotates again and again,
// every token signed by the current key verifies, at once and later (from
// the cache, which re-checks that its key is still published).
func TestVerifyDuringKeyRotation(t *testing.T) {
	for _, tc := range []struct {
		alg       string
		rotations int
	}{{keys.EdDSA, 50}, {keys.ES256, 50}, {keys.RS256, 5}} {
		t.Run(tc.alg, func(t *testing.T) {
			ctx := context.Background()
			e := vtNewEnv(t, tc.alg)
			v := e.verifier(t, Options{CacheSize: 64})
			var done atomic.Bool
			var wg sync.WaitGroup
			wg.Go(func() {
				defer done.Store(true)
				for range tc.rotations {
					if _, err := e.m.Rotate(ctx, true); err != nil {
						t.Error(err)
						return
					}
				}
			})
			var checked atomic.Int64
			for w := range 4 {
				wg.Go(func() {
					var mine []string
					for i := 0; !done.Load() || i < 20; i++ {
						c := e.claims(claims.KindSession)
						c.ID = fmt.Sprintf("%d-%d", w, i)
						tok := e.sign(t, claims.KindSession, c)
						mine = append(mine, tok)
						for _, tok := range []string{tok, mine[i/2]} {
							if _, err := v.Verify(tok, claims.KindSession); err != nil {
								t.Errorf("a token signed by the current key was refused during rotation: %v", err)
								return
							}
							checked.Add(1)
						}
					}
				})
			}
			wg.Wait()
			t.Logf("%d checks during %d rotations", checked.Load(), tc.rotations)
		})
	}
}

// vtAllAlgs are the algorithms a Verifier can be configured with.
var vtAllAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// vtMapKeySet is a KeySet whose keys a test adds and removes.
type vtMapKeySet struct {
	mu   sync.RWMutex
	keys map[string]jose.JSONWebKey
}

func (s *vtMapKeySet) PublicKey(kid string) (jose.JSONWebKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[kid]
	return k, ok
}

func (s *vtMapKeySet) set(k jose.JSONWebKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[string]jose.JSONWebKey{}
	}
	s.keys[k.KeyID] = k
}

func (s *vtMapKeySet) remove(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, kid)
}

// TestVerifyEveryAlgorithm checks the signature code against go-jose's
// signer, for every algorithm a Verifier can be configured with: tokens
// go-jose signs verify, and nothing verifies under another algorithm, key
// or signing input.
func TestVerifyEveryAlgorithm(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(nil, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKeys := map[jose.SignatureAlgorithm]*ecdsa.PrivateKey{}
	for alg, gen := range map[jose.SignatureAlgorithm]func() (*ecdsa.PrivateKey, error){
		jose.ES256: func() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), nil) },
		jose.ES384: func() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P384(), nil) },
		jose.ES512: func() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P521(), nil) },
	} {
		if ecKeys[alg], err = gen(); err != nil {
			t.Fatal(err)
		}
	}
	_, edKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	private := func(alg jose.SignatureAlgorithm) crypto.Signer {
		switch alg {
		case jose.ES256, jose.ES384, jose.ES512:
			return ecKeys[alg]
		case jose.EdDSA:
			return edKey
		}
		return rsaKey
	}
	clk := vtNewClock()
	payload := vtJSON(t, &claims.Claims{Claims: jwt.Claims{Issuer: vtIssuer, Audience: jwt.Audience{vtIssuer},
		Subject: "1", Expiry: jwt.NewNumericDate(clk.Now().Add(time.Hour))}})

	for _, alg := range vtAllAlgs {
		t.Run(string(alg), func(t *testing.T) {
			priv := private(alg)
			kid := "k-" + string(alg)
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
				(&jose.SignerOptions{}).WithType(jose.ContentType(claims.KindSession)))
			if err != nil {
				t.Fatal(err)
			}
			obj, err := signer.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			dot2 := strings.LastIndexByte(tok, '.')
			sig, err := b64.DecodeString(tok[dot2+1:])
			if err != nil {
				t.Fatal(err)
			}
			pub := priv.Public()
			if !keyFits(alg, pub) || !verifySignature(alg, pub, tok[:dot2], sig) {
				t.Fatal("a go-jose signature does not verify")
			}
			if verifySignature(alg, pub, tok[:dot2-1], sig) {
				t.Error("verifies another signing input")
			}
			for _, other := range vtAllAlgs {
				if other != alg && keyFits(other, pub) && verifySignature(other, pub, tok[:dot2], sig) {
					t.Errorf("verifies as %s", other)
				}
				if op := private(other).Public(); other != alg && op != pub && keyFits(alg, op) && verifySignature(alg, op, tok[:dot2], sig) {
					t.Errorf("verifies with the %s key", other)
				}
			}
			if keyFits(alg, []byte("secret")) || keyFits(alg, priv) {
				t.Error("a symmetric or private key fits")
			}

			// And through a Verifier configured for alg.
			ks := &vtMapKeySet{}
			ks.set(jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(alg), Use: "sig"})
			v, err := New(Options{Issuer: vtIssuer, Keys: ks, Now: clk.Now, Algorithms: []string{string(alg)}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(tok, claims.KindSession); err != nil {
				t.Fatal(err)
			}
		})
	}

	small, err := rsa.GenerateKey(nil, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if keyFits(jose.RS256, small.Public()) {
		t.Error("a 1024-bit RSA key fits RS256")
	}
	if keyFits(jose.ES256, ecKeys[jose.ES384].Public()) {
		t.Error("a P-384 key fits ES256")
	}
	if keyFits(jose.EdDSA, ed25519.PublicKey(make([]byte, 31))) {
		t.Error("a short Ed25519 key fits")
	}
}

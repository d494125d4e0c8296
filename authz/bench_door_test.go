package authz_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/authz"
	"github.com/ghbroker/ghbroker/authz/verify"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/revocation"
	"github.com/ghbroker/ghbroker/store/memory"
)

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the door and not a recorder.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkHTTPCheckCookie is one cached check through the HTTP door with a
// valid session cookie: request parsing, cookie, verification cache,
// policy, identity headers. The door's dialect is envoy, as the shipped
// configuration fixes it on authz.listen.
func BenchmarkHTTPCheckCookie(b *testing.B) {
	b.Run("no revocations", func(b *testing.B) { benchCookie(b, cookieOpts{}) })
	// The revocation lookup with 100,000 live entries (half subjects,
	// half sessions) that do not match: the cost every check pays.
	set := revocation.New(revocation.Options{})
	exp := revocation.Millis(time.Now().Add(time.Hour))
	for i := range 100_000 {
		if i%2 == 0 {
			set.Add(revocation.Entry{Subject: strconv.Itoa(1_000_000 + i), Before: exp, Expires: exp})
		} else {
			set.Add(revocation.Entry{Session: "s" + strconv.Itoa(i), Expires: exp})
		}
	}
	b.Run("100k revocations", func(b *testing.B) { benchCookie(b, cookieOpts{rev: set}) })
	b.Run("forward_token off", func(b *testing.B) { benchCookie(b, cookieOpts{omitToken: true}) })
	// authz.dialect: auto, which tells the dialect from the headers.
	b.Run("dialect auto", func(b *testing.B) { benchCookie(b, cookieOpts{auto: true}) })
	// The same-bytes limit in process: a handler answering with exactly
	// the check's headers, as bench/load.sh's i-samebytes.
	b.Run("same bytes", func(b *testing.B) {
		hd, req := cookieCheck(b, cookieOpts{})
		bare := sameBytes(hd, req)
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			bare.ServeHTTP(w, req)
		}
	})
}

// sameBytes is the same-bytes limit of check for req: a bare handler
// answering with exactly the headers check answers req with.
func sameBytes(check http.Handler, req *http.Request) http.Handler {
	w := &discardWriter{h: http.Header{}}
	check.ServeHTTP(w, req)
	same := w.h.Clone()
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		for k, v := range same {
			h[k] = v
		}
		w.WriteHeader(http.StatusOK)
	})
}

// cookieOpts vary the door of BenchmarkHTTPCheckCookie.
type cookieOpts struct {
	rev       authz.Revocations // nil: none
	omitToken bool              // authz.forward_token: false
	auto      bool              // authz.dialect: auto instead of envoy
}

func benchCookie(b *testing.B, o cookieOpts) {
	h, req := cookieCheck(b, o)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// cookieCheck is the HTTP door, metered as in production, and a request
// carrying a valid session cookie.
func cookieCheck(b *testing.B, o cookieOpts) (http.Handler, *http.Request) {
	const iss = "https://auth.example.com"
	ctx := context.Background()
	km, err := keys.NewManager(ctx, memory.New(memory.Options{}), keys.Options{})
	if err != nil {
		b.Fatal(err)
	}
	v, _ := verify.New(verify.Options{Issuer: iss, Keys: km})
	p, _ := authz.CompilePolicy(authz.PolicyConfig{Default: "deny", Rules: []authz.RuleConfig{
		{Hosts: []string{"app.example.com"}, Allow: authz.AllowConfig{Groups: []string{"acme/sre"}}}}})
	m, err := authz.NewMetrics(nil)
	if err != nil {
		b.Fatal(err)
	}
	opts := authz.HTTPOptions{Issuer: iss, Verifier: v, Policy: p, OmitToken: o.omitToken, Metrics: m,
		Revocations: o.rev, Dialect: authz.DialectAmbassador}
	if o.auto {
		opts.Dialect = authz.DialectAuto
	}
	h, err := authz.NewHTTPHandler(opts)
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := km.Sign(claims.KindSession, &claims.Claims{Claims: jwt.Claims{Issuer: iss, Subject: "1",
		Audience: jwt.Audience{iss}, Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))},
		PreferredUsername: "alice", Groups: []string{"acme", "acme/sre"}})
	req := httptest.NewRequest(http.MethodGet, "/dashboards/1", nil)
	req.Host = "app.example.com"
	req.Header.Set("Cookie", "_ghbroker="+tok)
	req.Header.Set("X-Forwarded-Proto", "https")
	return h, req
}

// BenchmarkHTTPCheckBearer is BenchmarkHTTPCheckCookie with a cached
// access token in Authorization: no header decoding on a hit.
func BenchmarkHTTPCheckBearer(b *testing.B) {
	const iss = "https://auth.example.com"
	km, err := keys.NewManager(context.Background(), memory.New(memory.Options{}), keys.Options{})
	if err != nil {
		b.Fatal(err)
	}
	v, _ := verify.New(verify.Options{Issuer: iss, Keys: km})
	p, _ := authz.CompilePolicy(authz.PolicyConfig{Default: "deny", Rules: []authz.RuleConfig{
		{Hosts: []string{"app.example.com"}, Allow: authz.AllowConfig{Groups: []string{"acme/sre"}}}}})
	h, err := authz.NewHTTPHandler(authz.HTTPOptions{Issuer: iss, Verifier: v, Policy: p})
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := km.Sign(claims.KindAccess, &claims.Claims{Claims: jwt.Claims{Issuer: iss, Subject: "1",
		Audience: jwt.Audience{iss, claims.GatewayAudience(iss)}, Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))},
		PreferredUsername: "alice", Groups: []string{"acme", "acme/sre"}})
	req := httptest.NewRequest(http.MethodGet, "/dashboards/1", nil)
	req.Host = "app.example.com"
	req.Header.Set("Authorization", "Bearer "+tok)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkHTTPCheckDistinctTokens is the cache-miss check through the HTTP
// door: every request carries another RS256 access token (more tokens than
// the cache holds). Compare with BenchmarkRS256Signature.
func BenchmarkHTTPCheckDistinctTokens(b *testing.B) {
	const iss = "https://auth.example.com"
	ctx := context.Background()
	km, err := keys.NewManager(ctx, memory.New(memory.Options{}), keys.Options{})
	if err != nil {
		b.Fatal(err)
	}
	v, _ := verify.New(verify.Options{Issuer: iss, Keys: km, CacheSize: 64})
	p, _ := authz.CompilePolicy(authz.PolicyConfig{Default: "deny", Rules: []authz.RuleConfig{
		{Hosts: []string{"app.example.com"}, Allow: authz.AllowConfig{Groups: []string{"acme/sre"}}}}})
	h, err := authz.NewHTTPHandler(authz.HTTPOptions{Issuer: iss, Verifier: v, Policy: p})
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]*http.Request, 512)
	for i := range reqs {
		tok, _ := km.Sign(claims.KindAccess, &claims.Claims{Claims: jwt.Claims{Issuer: iss, Subject: "1", ID: strconv.Itoa(i),
			Audience: jwt.Audience{iss, claims.GatewayAudience(iss)}, Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))},
			PreferredUsername: "alice", Groups: []string{"acme", "acme/sre", "acme/dev"}})
		r := httptest.NewRequest(http.MethodGet, "/dashboards/1", nil)
		r.Host = "app.example.com"
		r.Header.Set("Authorization", "Bearer "+tok)
		reqs[i] = r
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, reqs[i%len(reqs)])
		i++
	}
}

// Command loadserver is the server half of bench/load.sh: it serves either
// a bare net/http handler answering 200 (the baseline) or ghbroker's real
// HTTP authorization check (the dedicated-listener door) with an in-memory
// key set, and writes the credentials the load generator sends.
//
// It is a measurement tool, not part of the product.
package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ghbroker/ghbroker/authz"
	"github.com/ghbroker/ghbroker/authz/verify"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/keys"
	"github.com/ghbroker/ghbroker/revocation"
	"github.com/ghbroker/ghbroker/store/memory"
)

const issuer = "https://auth.example.com"

func main() {
	mode := flag.String("mode", "bare", "bare | floor (bare + one RS256 verification per request) | floorsame (floor answering with exactly the check's headers for a Bearer access token) | samebytes (bare, answering with exactly the check's headers for the session cookie) | samebytes-spin (samebytes, first burning as much CPU as the cached check costs more than it, measured in process at start) | authz | rsa (print the cost of one RS256 verification and exit)")
	addr := flag.String("addr", "127.0.0.1:18181", "listen address")
	out := flag.String("tokens", "", "directory to write session.txt and access-*.txt into (authz mode)")
	distinct := flag.Int("distinct", 4000, "distinct access tokens to write for the cache-miss scenario")
	cacheSize := flag.Int("cache", 0, "verifier cache size (0: default)")
	omitToken := flag.Bool("omit-token", false, "authz.forward_token: false (authz mode)")
	revocations := flag.Int("revocations", 0, "live revocation entries the check consults (authz mode; none match the benchmark's tokens)")
	profile := flag.String("cpuprofile", "", "write a CPU profile here until SIGINT/SIGTERM")
	dialectName := flag.String("dialect", "envoy", "authz.dialect of the check (authz mode): envoy as deploy/base/config.yaml fixes it for authz.listen, or auto")
	flag.Parse()
	dialect, err := authz.ParseDialect(*dialectName)
	if err != nil {
		log.Fatalf("-dialect: %v", err)
	}
	startProfile := func() {
		if *profile == "" {
			return
		}
		f, err := os.Create(*profile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		go func() { <-sig; pprof.StopCPUProfile(); f.Close(); os.Exit(0) }()
	}

	switch *mode {
	case "rsa":
		fmt.Println(rsaVerifyNanos())
		return
	case "bare":
		startProfile()
		serve(*addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	case "floor":
		verify := rsaVerifier()
		startProfile()
		serve(*addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			verify()
			w.WriteHeader(http.StatusOK)
		}))
	case "floorsame":
		hdr := checkHeaders(check(*out, 1, *cacheSize, 0, false, dialect), *out, "access.txt")
		verify := rsaVerifier()
		startProfile()
		serve(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			verify()
			h := w.Header()
			for k, v := range hdr {
				h[k] = v
			}
			h["Authorization"] = r.Header["Authorization"] // the check forwards the request's token
			w.WriteHeader(http.StatusOK)
		}))
	case "samebytes", "samebytes-spin":
		chk := check(*out, 1, *cacheSize, 0, false, dialect)
		hdr := checkHeaders(chk, *out, "session.txt")
		same := func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			for k, v := range hdr {
				h[k] = v
			}
			w.WriteHeader(http.StatusOK)
		}
		n := 0
		if *mode == "samebytes-spin" {
			n = spinLikeCheck(chk, same, *out)
		}
		startProfile()
		serve(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			spin(n)
			same(w, r)
		}))
	case "authz":
		h := check(*out, *distinct, *cacheSize, *revocations, *omitToken, dialect)
		startProfile() // after the tokens are signed
		serve(*addr, h)
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
}

func serve(addr string, h http.Handler) {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Println("ready")
	log.Fatal(srv.ListenAndServe())
}

// spinLikeCheck measures in process how much longer the cached cookie
// check takes than the same-bytes handler, and returns the spin iterations
// that burn as long: the samebytes-spin server costs what the check costs
// in CPU time, with none of its memory traffic or code.
func spinLikeCheck(chk http.Handler, same http.HandlerFunc, dir string) int {
	r := credentialRequest(dir, "session.txt")
	w := &discardWriter{h: http.Header{}}
	per := func(h http.Handler) float64 {
		const n = 200_000
		start := time.Now()
		for range n {
			clear(w.h)
			h.ServeHTTP(w, r)
		}
		return float64(time.Since(start).Nanoseconds()) / n
	}
	per(chk) // warm up
	extra := per(chk) - per(same)
	const n = 10_000_000
	start := time.Now()
	spin(n)
	iter := float64(time.Since(start).Nanoseconds()) / n
	k := max(0, int(extra/iter))
	fmt.Fprintf(os.Stderr, "samebytes-spin: the check costs %.0f ns more than the same-bytes handler in process; spinning %d iterations\n", extra, k)
	return k
}

// spinSink keeps spin's result alive.
var spinSink uint64

// spin burns CPU in registers: n steps of a linear congruential generator.
func spin(n int) {
	x := spinSink
	for range n {
		x = x*6364136223846793005 + 1442695040888963407
	}
	spinSink = x
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// credentialRequest is the benchmark's request carrying the first
// credential in file (session.txt: as the session cookie; access.txt: as a
// Bearer token).
func credentialRequest(dir, file string) *http.Request {
	raw, err := os.ReadFile(dir + "/" + file)
	if err != nil {
		log.Fatal(err)
	}
	cred, _, _ := strings.Cut(string(raw), "\n")
	r := httptest.NewRequest(http.MethodGet, "/dashboards/1", nil)
	r.Host = "app.example.com"
	r.Header.Set("X-Forwarded-Proto", "https")
	if file == "session.txt" {
		r.Header.Set("Cookie", "_ghbroker="+cred)
	} else {
		r.Header.Set("Authorization", "Bearer "+cred)
	}
	return r
}

// checkHeaders are the headers the check answers a request with, carrying
// the first credential in file (session.txt: as the session cookie;
// access.txt: as a Bearer token): what the same-bytes baselines send back.
func checkHeaders(h http.Handler, dir, file string) http.Header {
	r := credentialRequest(dir, file)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		log.Fatalf("the check answered %d", rec.Code)
	}
	return rec.Header().Clone()
}

// check builds the real authorization check and writes its credentials.
func check(dir string, distinct, cacheSize, revocations int, omitToken bool, dialect authz.Dialect) http.Handler {
	ctx := context.Background()
	km, err := keys.NewManager(ctx, memory.New(memory.Options{}), keys.Options{Algorithm: keys.RS256})
	if err != nil {
		log.Fatal(err)
	}
	v, err := verify.New(verify.Options{Issuer: issuer, Keys: km, CacheSize: cacheSize})
	if err != nil {
		log.Fatal(err)
	}
	policy, err := authz.CompilePolicy(authz.PolicyConfig{Default: "deny", Rules: []authz.RuleConfig{
		{Hosts: []string{"app.example.com"}, Allow: authz.AllowConfig{Groups: []string{"acme/sre"}}},
	}})
	if err != nil {
		log.Fatal(err)
	}
	// Metrics as in production (ghbroker authz and serve always meter the
	// check), in a registry nobody scrapes.
	m, err := authz.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		log.Fatal(err)
	}
	opts := authz.HTTPOptions{Issuer: issuer, Verifier: v, Policy: policy, OmitToken: omitToken, Metrics: m, Dialect: dialect}
	if revocations > 0 {
		set := revocation.New(revocation.Options{})
		exp := revocation.Millis(time.Now().Add(24 * time.Hour))
		for i := range revocations {
			if i%2 == 0 {
				set.Add(revocation.Entry{Subject: fmt.Sprint(1_000_000 + i), Before: exp, Expires: exp})
			} else {
				set.Add(revocation.Entry{Session: fmt.Sprint("s", i), Expires: exp})
			}
		}
		opts.Revocations = set
	}
	h, err := authz.NewHTTPHandler(opts)
	if err != nil {
		log.Fatal(err)
	}
	sign := func(kind claims.Kind, i int) string {
		now := time.Now()
		aud := jwt.Audience{issuer}
		if kind == claims.KindAccess {
			aud = append(aud, claims.GatewayAudience(issuer)) // a client with gateway_access
		}
		tok, err := km.Sign(kind, &claims.Claims{Claims: jwt.Claims{Issuer: issuer, Subject: fmt.Sprint(1000 + i), Audience: aud,
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour)), ID: fmt.Sprint(i)},
			PreferredUsername: fmt.Sprintf("user%d", i), Email: "user@example.com",
			Groups: []string{"acme", "acme/sre", "acme/dev"}})
		if err != nil {
			log.Fatal(err)
		}
		return tok
	}
	if dir != "" {
		write(dir+"/session.txt", []string{sign(claims.KindSession, 0)})
		toks := make([]string, distinct)
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Go(func() {
				for i := w; i < distinct; i += 2 {
					toks[i] = sign(claims.KindAccess, i)
				}
			})
		}
		wg.Wait()
		write(dir+"/access.txt", toks)
	}
	return h
}

func write(path string, lines []string) {
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		log.Fatal(err)
	}
}

// rsaVerifier returns a function doing one RS256 (PKCS#1 v1.5, SHA-256,
// 2048-bit) verification with crypto/rsa: the floor of an uncached check.
func rsaVerifier() func() {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	sum := sha256.Sum256([]byte("payload"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, sum[:])
	if err != nil {
		log.Fatal(err)
	}
	return func() {
		s := sha256.Sum256([]byte("payload"))
		if err := rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, s[:], sig); err != nil {
			log.Fatal(err)
		}
	}
}

// rsaVerifyNanos measures one RS256 verification in a loop.
func rsaVerifyNanos() int64 {
	verify := rsaVerifier()
	const n = 3000
	start := time.Now()
	for range n {
		verify()
	}
	return time.Since(start).Nanoseconds() / n
}

//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestSoak runs mixed traffic against `ghbroker dev` — cached checks,
// sign-ins, refresh grants — together with the floods a hostile network
// sends (anonymous /login, forged cookies, slow request bodies, stuffed
// Cookie headers), samples the server's RSS, goroutines and open files
// every second, and fails when any of them keeps growing. Its length is
// GHBROKER_SOAK (a Go duration; default 60s, what CI runs; `make soak`
// runs 10m). Every loop is bounded by the duration and every request by a
// timeout, and all traffic stays on loopback.
func TestSoak(t *testing.T) {
	d := 60 * time.Second
	if s := os.Getenv("GHBROKER_SOAK"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d < 20*time.Second {
			t.Fatalf("GHBROKER_SOAK=%q: want a duration of at least 20s", s)
		}
	}
	port := freePort(t)
	p := start(t, "ghbroker dev is running", "dev", "--port", fmt.Sprint(port), "--auto-login", "alice")
	issuer := fmt.Sprintf("http://ghbroker.localhost:%d", port)
	app := fmt.Sprintf("http://app.ghbroker.localhost:%d/", port)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	signedIn := newClient(t)
	signedIn.signIn(t, issuer, "alice")
	rp := newSoakRP(t, issuer, signedIn)

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var counts sync.Map // name → *atomic.Int64
	count := func(name string) {
		v, _ := counts.LoadOrStore(name, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	loop := func(name string, pause time.Duration, f func() error) {
		for ctx.Err() == nil {
			if err := f(); err != nil && ctx.Err() == nil {
				count(name + " errors")
			} else {
				count(name)
			}
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
	}
	status := func(c *http.Client, method, u string, hdr http.Header, want ...int) error {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(rctx, method, u, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if !slices.Contains(want, resp.StatusCode) {
			return fmt.Errorf("%s %s: %d", method, u, resp.StatusCode)
		}
		return nil
	}
	anon := newClient(t).http
	forged := http.Header{"Cookie": {"_ghbroker=eyJhbGciOiJFUzI1NiIsImtpZCI6Inh4eCJ9.eyJzdWIiOiIxIn0.AAAA"}, "Accept": {"text/html"}}
	var stuffed strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&stuffed, "_ghbroker.%d=x; ", i)
	}

	var wg sync.WaitGroup
	for _, w := range []struct {
		name  string
		pause time.Duration
		f     func() error
	}{
		{"check", 0, func() error { return status(signedIn.http, http.MethodGet, app, nil, http.StatusOK) }},
		{"check", 0, func() error { return status(signedIn.http, http.MethodGet, app, nil, http.StatusOK) }},
		{"sign-in", 200 * time.Millisecond, func() error {
			c := newClient(t)
			defer c.http.CloseIdleConnections() // a browser that goes away
			return c.trySignIn(ctx, issuer, "carol")
		}},
		{"refresh", 100 * time.Millisecond, rp.refresh},
		{"anonymous login flood", 0, func() error {
			return status(anon, http.MethodGet, issuer+"/login?rd=/"+strings.Repeat("x", 2000), nil, http.StatusFound)
		}},
		{"forged cookie flood", 0, func() error {
			return status(anon, http.MethodGet, app, forged, http.StatusFound, http.StatusUnauthorized)
		}},
		{"stuffed cookie logout", 50 * time.Millisecond, func() error {
			return status(anon, http.MethodGet, issuer+"/logout", http.Header{"Cookie": {stuffed.String()}}, http.StatusOK, http.StatusSeeOther)
		}},
		{"slow bodies", 0, func() error { return slowBodies(ctx, addr, 50) }},
	} {
		wg.Go(func() { loop(w.name, w.pause, w.f) })
	}

	var samples []soakSample
	sampler := loopbackClient()
	tick := time.NewTicker(time.Second)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			s, err := sample(sampler, p.cmd.Process.Pid, issuer)
			if err != nil {
				t.Logf("sample: %v", err)
				continue
			}
			samples = append(samples, s)
		}
	}
	tick.Stop()
	wg.Wait()

	var report []string
	counts.Range(func(k, v any) bool {
		report = append(report, fmt.Sprintf("%s=%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(report)
	t.Logf("%s of traffic: %s", d, strings.Join(report, " "))
	for _, name := range []string{"check", "sign-in", "refresh"} {
		if v, ok := counts.Load(name + " errors"); ok && v.(*atomic.Int64).Load() > 0 {
			t.Errorf("%d %s requests failed", v.(*atomic.Int64).Load(), name)
		}
		if v, ok := counts.Load(name); !ok || v.(*atomic.Int64).Load() == 0 {
			t.Errorf("no %s request succeeded", name)
		}
	}
	if len(samples) < 15 {
		t.Fatalf("only %d samples", len(samples))
	}
	for _, m := range []struct {
		name  string
		get   func(soakSample) float64
		slack float64 // growth tolerated beyond 25 %
	}{
		{"RSS (MiB)", func(s soakSample) float64 { return s.rssMiB }, 20},
		{"goroutines", func(s soakSample) float64 { return s.goroutines }, 50},
		{"open files", func(s soakSample) float64 { return s.fds }, 50},
	} {
		if msg := growing(samples, m.get, m.slack); msg != "" {
			t.Errorf("%s keeps growing: %s", m.name, msg)
		} else {
			t.Logf("%s steady: %s", m.name, windows(samples, m.get))
		}
	}
}

// soakSample is one look at the server process.
type soakSample struct {
	rssMiB, goroutines, fds float64
}

// sample reads the process's RSS and open files from /proc and its
// goroutines from /metrics.
func sample(c *http.Client, pid int, issuer string) (soakSample, error) {
	var s soakSample
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			s.rssMiB = kb / 1024
		}
	}
	fds, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		return s, err
	}
	s.fds = float64(len(fds))
	resp, err := c.Get(issuer + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	sc = bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			s.goroutines, _ = strconv.ParseFloat(v, 64)
			return s, nil
		}
	}
	return s, fmt.Errorf("no go_goroutines in %s/metrics", issuer)
}

// thirds are the medians of three equal windows after a warm-up quarter.
func thirds(ss []soakSample, get func(soakSample) float64) [3]float64 {
	ss = ss[len(ss)/4:]
	n := len(ss) / 3
	var out [3]float64
	for i := range 3 {
		var v []float64
		for _, s := range ss[i*n : (i+1)*n] {
			v = append(v, get(s))
		}
		slices.Sort(v)
		out[i] = v[len(v)/2]
	}
	return out
}

func windows(ss []soakSample, get func(soakSample) float64) string {
	w := thirds(ss, get)
	return fmt.Sprintf("medians %.0f → %.0f → %.0f", w[0], w[1], w[2])
}

// growing reports a metric that rose from window to window, and by more
// than a quarter plus slack over the run: a leak, not a warm cache.
func growing(ss []soakSample, get func(soakSample) float64, slack float64) string {
	w := thirds(ss, get)
	if w[0] < w[1] && w[1] < w[2] && w[2] > w[0]*1.25+slack {
		return windows(ss, get)
	}
	return ""
}

// slowBodies opens n connections that each announce a 60,000-byte POST
// body and send ten bytes of it, then waits until the server closes them
// or 20 s pass, and closes what is left.
func slowBodies(ctx context.Context, addr string, n int) error {
	var conns []net.Conn
	for range n {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break
		}
		fmt.Fprintf(c, "POST /token HTTP/1.1\r\nHost: ghbroker.localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\ngrant_type")
		conns = append(conns, c)
	}
	deadline := time.Now().Add(20 * time.Second)
	if end, ok := ctx.Deadline(); ok && end.Before(deadline) {
		deadline = end
	}
	for _, c := range conns {
		_ = c.SetReadDeadline(deadline)
		_, _ = io.Copy(io.Discard, c) // returns when the server hangs up
		c.Close()
	}
	return nil
}

// trySignIn is signIn for the soak loops: it returns an error instead of
// failing the test from another goroutine.
func (c *client) trySignIn(ctx context.Context, issuer, login string) error {
	u := issuer + "/login?login_hint=" + url.QueryEscape(login)
	for range 10 {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := c.http.Do(req)
		if err != nil {
			cancel()
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || loc == "" {
			if !strings.Contains(string(body), `id="signed-in"`) {
				return fmt.Errorf("sign-in ended with %d at %s", resp.StatusCode, u)
			}
			return nil
		}
		next, _ := url.Parse(u)
		nu, _ := next.Parse(loc)
		u = nu.String()
	}
	return fmt.Errorf("sign-in redirect loop")
}

// soakRP is the dev Grafana client holding a refresh token.
type soakRP struct {
	conf oauth2.Config
	ctx  context.Context
	mu   sync.Mutex
	tok  *oauth2.Token
}

// newSoakRP runs the code flow for the dev "grafana" client with a
// signed-in browser and keeps its tokens.
func newSoakRP(t *testing.T, issuer string, b *client) *soakRP {
	t.Helper()
	return codeFlowRP(t, oauth2.Config{
		ClientID: "grafana", ClientSecret: "grafana-dev-secret-not-for-production",
		RedirectURL: "http://localhost:3000/login/generic_oauth",
		Endpoint:    oauth2.Endpoint{AuthURL: issuer + "/authorize", TokenURL: issuer + "/token"},
		Scopes:      []string{"openid", "profile", "groups", "offline_access"},
	}, b)
}

// codeFlowRP runs the code flow for conf with a signed-in browser and
// keeps the tokens.
func codeFlowRP(t *testing.T, conf oauth2.Config, b *client) *soakRP {
	t.Helper()
	rp := &soakRP{conf: conf, ctx: context.WithValue(context.Background(), oauth2.HTTPClient, loopbackClient())}
	verifier := oauth2.GenerateVerifier()
	u := rp.conf.AuthCodeURL("soak", oauth2.S256ChallengeOption(verifier))
	var code string
	for range 10 {
		resp, _ := b.get(t, u)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || loc == "" {
			t.Fatalf("authorize ended with %d at %s", resp.StatusCode, u)
		}
		next, _ := url.Parse(u)
		nu, _ := next.Parse(loc)
		if strings.HasPrefix(nu.String(), rp.conf.RedirectURL) {
			code = nu.Query().Get("code")
			break
		}
		u = nu.String()
	}
	tok, err := rp.conf.Exchange(rp.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	rp.tok = tok
	return rp
}

// refresh redeems the current refresh token for a new one.
func (rp *soakRP) refresh() error {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	old := *rp.tok
	old.Expiry = time.Now().Add(-time.Minute)
	tok, err := rp.conf.TokenSource(rp.ctx, &old).Token()
	if err != nil {
		return err
	}
	if tok.RefreshToken == old.RefreshToken {
		return fmt.Errorf("the refresh token was not rotated")
	}
	rp.tok = tok
	return nil
}

package authz

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/internal/testclock"
)

// TestRefusedCheckWarns: a check refused because its gateway headers
// disagree is logged at warn with its reason and door, at most once a
// second per reason, with the count of the lines held back.
func TestRefusedCheckWarns(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	clk := testclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	hd, err := NewHTTPHandler(HTTPOptions{Issuer: testIssuer, Verifier: newStubVerifier(), Policy: mustPolicy(t, testPolicyConfig()),
		Logger: log, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	check := func(uri string) {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "/authz", nil)
		r.Host = grafanaHost
		r.Header.Set("X-Original-URL", "https://grafana.example.com/admin")
		r.Header.Set("X-Original-URI", uri)
		w := httptest.NewRecorder()
		hd.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("disagreeing headers: %d, want 401", w.Code)
		}
	}
	lines := func() []string {
		s := strings.TrimSpace(buf.String())
		buf.Reset()
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}

	for range 1000 {
		check("/public")
	}
	got := lines()
	if len(got) != 1 {
		t.Fatalf("%d lines for a burst, want 1:\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, want := range []string{"level=WARN", "door=nginx", `reason="authz: bad original request: X-Original-URL and X-Original-URI name different paths"`, "suppressed=0"} {
		if !strings.Contains(got[0], want) {
			t.Errorf("line %q lacks %q", got[0], want)
		}
	}
	if strings.Contains(got[0], "/public") || strings.Contains(got[0], "/admin") {
		t.Errorf("line %q repeats the request's headers", got[0])
	}

	clk.Advance(500 * time.Millisecond)
	check("/public")
	if got := lines(); len(got) != 0 {
		t.Fatalf("within the second: %q", got)
	}
	clk.Advance(500 * time.Millisecond)
	check("/public")
	if got := lines(); len(got) != 1 || !strings.Contains(got[0], "suppressed=1000") {
		t.Fatalf("after a second: %q, want one line with suppressed=1000", got)
	}

	// Another reason has its own budget; the gRPC door names itself.
	c, err := newChecker(testIssuer, newStubVerifier(), mustPolicy(t, testPolicyConfig()), "", nil, log, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	g := &grpcAuthz{c: c, memo: newHeaderMemo()}
	req := envoyCheck("GET", "https", grafanaHost, "/", nil, nil)
	req.Attributes.Request.Http.Headers[":authority"] = "status.example.com"
	if _, err := g.Check(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := lines(); len(got) != 1 || !strings.Contains(got[0], "door=grpc") || !strings.Contains(got[0], "host attribute and :authority disagree") {
		t.Fatalf("gRPC door: %q", got)
	}
}

// TestBadPathWarns: a path refused for not being in normal form is
// logged at warn, with the reason and not the path, on both doors.
func TestBadPathWarns(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	hd, err := NewHTTPHandler(HTTPOptions{Issuer: testIssuer, Verifier: newStubVerifier(), Policy: mustPolicy(t, testPolicyConfig()), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RequestURI, r.Host = "/public/..;/secret-admin", "status.example.com"
	w := httptest.NewRecorder()
	hd.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Fatalf("bad path: %d, want 403", w.Code)
	}
	c, err := newChecker(testIssuer, newStubVerifier(), mustPolicy(t, testPolicyConfig()), "", nil, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &grpcAuthz{c: c, memo: newHeaderMemo()}
	res, err := g.Check(context.Background(), envoyCheck("GET", "https", "status.example.com", "/public/%2e%2e/secret-admin", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.GetDeniedResponse().GetStatus().GetCode(); got != 403 {
		t.Errorf("gRPC bad path: %v, want 403", got)
	}
	out := buf.String()
	for _, want := range []string{"door=http", "door=grpc", `reason="the request path is not in normal form"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret-admin") {
		t.Errorf("the log repeats the path:\n%s", out)
	}
}

func TestWarnLimiterBounded(t *testing.T) {
	clk := testclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	l := newWarnLimiter(clk.Now)
	for i := range 10 * warnMaxReasons {
		l.allow(doorHTTP, strings.Repeat("x", i))
	}
	if n := len(l.reasons); n > warnMaxReasons+1 {
		t.Errorf("%d reasons tracked, want at most %d", n, warnMaxReasons+1)
	}
}

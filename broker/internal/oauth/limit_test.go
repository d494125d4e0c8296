package oauth

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/internal/testclock"
)

func authRequest(source, id, secret string) (*http.Request, url.Values) {
	form := url.Values{"client_id": {id}, "client_secret": {secret}}
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
	r.RemoteAddr = source + ":40000"
	return r, form
}

// TestFailedAuthenticationIsRateLimited: guessing a secret from one source
// stops after the burst (429 before any secret is compared, the right
// secret included), refills slowly, leaves other sources alone until the
// client's own budget is spent, and logs each failure.
func TestFailedAuthenticationIsRateLimited(t *testing.T) {
	clock := testclock.New(time.Unix(1_800_000_000, 0))
	var logs bytes.Buffer
	const good = "0123456789abcdef0123456789abcdef"
	cs, err := NewClients([]Client{{ID: "grafana", Secret: good}, {ID: "cli", Public: true}}, clock.Now,
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	try := func(source, id, secret string) *Error {
		t.Helper()
		r, form := authRequest(source, id, secret)
		_, err := cs.Authenticate(r, form)
		if err == nil {
			return nil
		}
		return err.(*Error)
	}
	for i := range sourceBurst {
		if e := try("192.0.2.1", "grafana", "guess"); e == nil || e.Status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %v", i, e)
		}
	}
	e := try("192.0.2.1", "grafana", good)
	if e == nil || e.Status != http.StatusTooManyRequests || e.RetryAfter < time.Second {
		t.Fatalf("after %d failures the right secret from the same source: %+v, want 429", sourceBurst, e)
	}
	if e := try("198.51.100.7", "grafana", good); e != nil {
		t.Errorf("another source is locked out too: %v", e)
	}
	if e := try("192.0.2.1", "cli", ""); e != nil {
		t.Errorf("a public client naming itself is limited: %v", e)
	}
	clock.Advance(sourceRefill)
	if e := try("192.0.2.1", "grafana", good); e != nil {
		t.Errorf("after the refill the right secret: %v", e)
	}
	// The client's own budget: many sources, one client.
	for i := range clientBurst {
		try("203.0.113."+string(rune('a'+i%26))+string(rune('a'+i/26)), "grafana", "guess")
	}
	if e := try("198.51.100.8", "grafana", "guess"); e == nil || e.Status != http.StatusTooManyRequests {
		t.Errorf("past the client's budget from a fresh source: %v, want 429", e)
	}
	if n := strings.Count(logs.String(), "client authentication failed"); n < sourceBurst {
		t.Errorf("%d failures logged, want every one", n)
	}
}

// TestLimiterMemoryIsBounded: fresh keys beyond maxTracked do not grow the
// table.
func TestLimiterMemoryIsBounded(t *testing.T) {
	l := newFailureLimiter(nil)
	for i := range maxTracked + 500 {
		l.fail(clientKey(strings.Repeat("x", i%7) + string(rune(i))))
	}
	if n := len(l.buckets); n > maxTracked {
		t.Errorf("%d buckets tracked, cap %d", n, maxTracked)
	}
}

package broker_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/claims"
)

// TestSlideSession: a session token close to expiry is re-signed for the
// gRPC check to hand back as a cookie, never beyond twice the TTL after the
// memberships were read.
func TestSlideSession(t *testing.T) {
	w := newWorld(t, worldOptions{})
	b := w.browser()
	b.signIn("/")
	tok := b.sessionToken(w.issuer + "/")
	c, err := w.verifier.Verify(tok, claims.KindSession)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.sessions.Slide(c, tok); got != nil {
		t.Fatalf("a fresh token was slid: %v", got)
	}
	slide := func(c *claims.Claims, tok string) (*claims.Claims, string) {
		t.Helper()
		set := w.sessions.Slide(c, tok)
		if len(set) != 1 {
			t.Fatalf("Set-Cookie values: %v", set)
		}
		ck, err := http.ParseSetCookie(set[0])
		if err != nil || ck.Name != "_ghbroker" || ck.Domain != "example.test" || !ck.HttpOnly {
			t.Fatalf("cookie %q: %+v %v", set[0], ck, err)
		}
		nc, err := w.verifier.Verify(ck.Value, claims.KindSession)
		if err != nil {
			t.Fatalf("slid token: %v", err)
		}
		return nc, ck.Value
	}
	w.clock.Advance(50 * time.Minute) // 10 minutes left of 1h
	c2, tok2 := slide(c, tok)
	if !c2.Expiry.Time().Equal(w.clock.Now().Add(time.Hour).Truncate(time.Second)) || !c2.IssuedAt.Time().Equal(c.IssuedAt.Time()) {
		t.Errorf("exp %v iat %v", c2.Expiry.Time(), c2.IssuedAt.Time())
	}
	w.clock.Advance(50 * time.Minute)
	c3, tok3 := slide(c2, tok2)
	if limit := c.IssuedAt.Time().Add(2 * time.Hour); !c3.Expiry.Time().Equal(limit) {
		t.Errorf("slid past iat+2×ttl: %v, limit %v", c3.Expiry.Time(), limit)
	}
	w.clock.Advance(19 * time.Minute)
	if got := w.sessions.Slide(c3, tok3); got != nil {
		t.Errorf("slid beyond the cap: %v", got)
	}
}

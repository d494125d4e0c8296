package revocation

import (
	"fmt"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/internal/testclock"
)

var t0 = time.Unix(1_800_000_000, 0)

func newSet(c *testclock.Clock, capacity int) *Set { return New(Options{Cap: capacity, Now: c.Now}) }

// TestSameMillisecondSafety: a subject entry at instant T matches tokens
// issued before T, even in the same second, and never one issued at or
// after T (renewal right after a webhook must not loop).
func TestSameMillisecondSafety(t *testing.T) {
	c := testclock.New(t0)
	s := newSet(c, 0)
	at := Millis(t0.Add(500 * time.Millisecond))
	if _, err := s.Add(Entry{Subject: "1001", Before: at, Expires: at + 3_600_000, Source: "webhook"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		iat  int64
		want bool
	}{
		{at - 1, true}, {at - 499, true}, {at, false}, {at + 1, false}, {Millis(t0), true},
	} {
		if got := s.Revoked("1001", "sess", tc.iat); got != tc.want {
			t.Errorf("iat %+d ms: revoked %v, want %v", tc.iat-at, got, tc.want)
		}
	}
	if s.Revoked("1002", "sess", at-1) {
		t.Error("another subject is revoked")
	}
	// A later revocation of the same subject moves the instant forward; an
	// earlier one does not move it back.
	s.Add(Entry{Subject: "1001", Before: at + 10, Expires: at + 3_600_000})
	s.Add(Entry{Subject: "1001", Before: at - 100, Expires: at + 3_600_000})
	if !s.Revoked("1001", "", at+9) || s.Revoked("1001", "", at+10) {
		t.Error("the newest instant does not win")
	}
}

func TestSessionEntries(t *testing.T) {
	c := testclock.New(t0)
	s := newSet(c, 0)
	s.Add(Entry{Session: "s1", Expires: Millis(t0.Add(time.Hour)), Source: "logout"})
	if !s.Revoked("1001", "s1", Millis(t0.Add(time.Minute))) {
		t.Error("a token of a signed-out session, even a later one, is valid")
	}
	if s.Revoked("1001", "s2", Millis(t0)) || s.Revoked("1001", "", Millis(t0)) {
		t.Error("another session is revoked")
	}
	if _, err := s.Add(Entry{Before: 1, Expires: 2}); err != ErrEntry {
		t.Errorf("an entry that names nothing: %v", err)
	}
}

// TestExpiry: an entry lives until every token it could match has expired,
// then it is dropped, so the set's size follows revocations per token
// lifetime, not users.
func TestExpiry(t *testing.T) {
	c := testclock.New(t0)
	s := newSet(c, 0)
	s.Add(Entry{Subject: "1001", Before: Millis(t0), Expires: Millis(t0.Add(time.Hour))})
	s.Add(Entry{Session: "s1", Expires: Millis(t0.Add(2 * time.Hour))})
	c.Advance(time.Hour)
	s.Expire()
	if s.Len() != 1 || s.Revoked("1001", "", Millis(t0)-1) || !s.Revoked("", "s1", 0) {
		t.Errorf("after an hour: %d entries, subject revoked %v", s.Len(), s.Revoked("1001", "", Millis(t0)-1))
	}
	c.Advance(time.Hour)
	s.Add(Entry{Subject: "1002", Before: Millis(c.Now()), Expires: Millis(c.Now().Add(time.Hour))}) // Add expires too
	if s.Len() != 1 || s.Revoked("", "s1", 0) {
		t.Errorf("after two hours: %d entries", s.Len())
	}
}

// TestCursor: a replica following the cursor sees every entry once, in
// order; one whose cursor is ahead (the broker restarted) or before a
// collapse starts over.
func TestCursor(t *testing.T) {
	c := testclock.New(t0)
	broker := newSet(c, 0)
	exp := Millis(t0.Add(time.Hour))
	broker.Add(Entry{Subject: "a", Before: 5, Expires: exp})
	broker.Add(Entry{Session: "s", Expires: exp})
	replica := newSet(c, 0)
	got, next, full := broker.Since(replica.Cursor())
	if len(got) != 2 || next != 2 || full {
		t.Fatalf("Since(0) = %v, %d, %v", got, next, full)
	}
	replica.Merge(got, next)
	broker.Add(Entry{Subject: "b", Before: 7, Expires: exp})
	got, next, full = broker.Since(replica.Cursor())
	if len(got) != 1 || got[0].Subject != "b" || next != 3 || full {
		t.Fatalf("Since(2) = %v, %d, %v", got, next, full)
	}
	replica.Merge(got, next)
	if !replica.Revoked("a", "", 4) || !replica.Revoked("", "s", 0) || !replica.Revoked("b", "", 6) || replica.Revoked("b", "", 7) {
		t.Error("the replica does not decide like the broker")
	}
	if got, _, full := broker.Since(99); !full || len(got) != 3 {
		t.Errorf("a cursor ahead of the broker: full %v, %d entries", full, len(got))
	}
	restarted := newSet(c, 0)
	restarted.Add(Entry{Subject: "z", Before: 1, Expires: exp})
	got, next, full = restarted.Since(replica.Cursor())
	if !full {
		t.Fatal("a replica ahead of a restarted broker is not told to start over")
	}
	replica.Replace(got, next)
	if replica.Revoked("a", "", 4) || !replica.Revoked("z", "", 0) || replica.Cursor() != 1 {
		t.Error("Replace did not start over")
	}
}

// TestCapCollapses: at the cap the set collapses into one entry that
// revokes every token issued before that instant, so nothing revoked
// becomes valid, memory stays bounded, and followers start over.
func TestCapCollapses(t *testing.T) {
	c := testclock.New(t0)
	s := newSet(c, 100)
	exp := Millis(t0.Add(time.Hour))
	for i := range 100 {
		s.Add(Entry{Subject: fmt.Sprint(i), Before: Millis(t0), Expires: exp})
	}
	cursor := s.Cursor()
	c.Advance(time.Second)
	s.Add(Entry{Session: "late", Expires: exp})
	if s.Len() != 2 {
		t.Errorf("%d entries after the collapse, want 2", s.Len())
	}
	if !s.Revoked("7", "", Millis(t0)-1) || !s.Revoked("someone-else", "", Millis(t0)) || !s.Revoked("", "late", Millis(c.Now())+1) {
		t.Error("the collapse let a revoked token through")
	}
	if s.Revoked("7", "", Millis(c.Now())) {
		t.Error("a token minted after the collapse is revoked")
	}
	if _, _, full := s.Since(cursor); !full {
		t.Error("a follower from before the collapse is not told to start over")
	}
	c.Advance(time.Hour)
	s.Expire()
	if s.Len() != 0 || s.Revoked("7", "", 0) {
		t.Error("the collapsed entry outlived the tokens it covers")
	}
}

// BenchmarkRevoked: the hot-path lookup with 100,000 live entries.
func BenchmarkRevoked(b *testing.B) {
	c := testclock.New(t0)
	s := newSet(c, 0)
	exp := Millis(t0.Add(time.Hour))
	for i := range 100_000 {
		if i%2 == 0 {
			s.Add(Entry{Subject: fmt.Sprint(i), Before: Millis(t0), Expires: exp})
		} else {
			s.Add(Entry{Session: fmt.Sprint("s", i), Expires: exp})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if s.Revoked("1001001", "sess-live", Millis(t0)) {
			b.Fatal("revoked")
		}
	}
}

// TestSessionEntryWithBefore: a sign-out revokes the session's tokens
// issued before it; those minted after it (an offline_access refresh) are
// good, unless a later entry revokes the whole session.
func TestSessionEntryWithBefore(t *testing.T) {
	c := testclock.New(t0)
	s := newSet(c, 0)
	at := Millis(t0)
	s.Add(Entry{Session: "s1", Before: at, Expires: at + 3_600_000, Source: "logout"})
	if !s.Revoked("1001", "s1", at-1) || s.Revoked("1001", "s1", at) {
		t.Error("a sign-out does not split the session's tokens at its instant")
	}
	s.Add(Entry{Session: "s1", Expires: at + 3_600_000, Source: "operator"})
	if !s.Revoked("1001", "s1", at+10_000) {
		t.Error("an operator's revoke after the sign-out does not revoke everything")
	}
}

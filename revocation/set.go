// Package revocation is the set of withdrawn tokens that every front door
// consults in memory: "tokens of subject S issued before instant T" and
// "tokens of session SID". It owns the set (matching, expiry, the cursor
// that replicas follow, the memory cap) and the feed's wire form; it does
// no I/O. The broker adds entries (sign-out, operators, webhooks, the
// membership recheck) and publishes them; every check — on the broker and
// on each `ghbroker authz` replica — asks Revoked on the hot path.
//
// Same-second safety: instants are milliseconds, and a token matches a
// subject entry only when it was issued strictly before the entry's
// instant. A token minted after the revocation (silent renewal right after
// a webhook) is never matched by it; one minted before always is.
package revocation

import (
	"errors"
	"math"
	"sync"
	"time"
)

// Entry is one revocation.
type Entry struct {
	// Seq is the entry's place in the set's history, from 1; the cursor of
	// the feed. Assigned by Add.
	Seq uint64 `json:"seq"`
	// Subject, when set, revokes that subject's tokens issued before
	// Before.
	Subject string `json:"sub,omitempty"`
	// Session, when set, revokes the tokens of that broker session: all
	// of them, or with Before those issued before it (a sign-out whose
	// offline_access refresh tokens go on).
	Session string `json:"sid,omitempty"`
	// All, when set, revokes every token issued before Before: the set
	// collapses into it when it reaches its cap.
	All bool `json:"all,omitempty"`
	// Before is the instant, in Unix milliseconds, before which a
	// subject's (or everyone's) tokens are revoked.
	Before int64 `json:"before,omitempty"`
	// Expires is when no token the entry could match is still valid, in
	// Unix milliseconds; the entry is dropped then.
	Expires int64 `json:"exp"`
	// Source says why: "logout", "operator", "webhook", "recheck", "cap".
	Source string `json:"src,omitempty"`
}

// DefaultCap bounds the live entries a set holds (about 150 bytes each).
const DefaultCap = 200_000

// ErrEntry: an entry names neither a subject, a session nor everyone.
var ErrEntry = errors.New("revocation: an entry needs a subject, a session or all")

// Set is a revocation set. Its zero value is not usable; use New.
type Set struct {
	cap int
	now func() time.Time

	mu        sync.RWMutex
	seq       uint64
	all       int64            // every token issued before this is revoked
	allExp    int64            // when the "all" entry expires
	subjects  map[string]int64 // subject → revoked before (ms)
	subjExp   map[string]int64
	sessions  map[string]int64 // session → expires (ms)
	sessUntil map[string]int64 // session → its tokens issued before this are revoked (math.MaxInt64: all)
	log       []Entry          // live entries by Seq, for the feed
	collapsed uint64           // Seq of the last collapse: older cursors start over
	changed   chan struct{}    // closed and replaced on every change
	soonest   int64            // the earliest Expires in log (math.MaxInt64: none)
}

// Options configure a Set.
type Options struct {
	// Cap bounds the live entries. Default DefaultCap. Reaching it
	// collapses the set into one "every token issued before now" entry:
	// nothing that was revoked becomes valid, every browser renews
	// silently through /login, and memory stays bounded.
	Cap int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// New returns an empty set.
func New(o Options) *Set {
	if o.Cap <= 0 {
		o.Cap = DefaultCap
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Set{cap: o.Cap, now: o.Now, subjects: map[string]int64{}, subjExp: map[string]int64{}, sessions: map[string]int64{}, sessUntil: map[string]int64{},
		changed: make(chan struct{}), soonest: math.MaxInt64}
}

// Millis is t in Unix milliseconds, the precision of revocations.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// Revoked reports whether a token of subject sub and session sid, issued
// at the Unix millisecond iat, is revoked. It takes a read lock and
// allocates nothing.
func (s *Set) Revoked(sub, sid string, iat int64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if iat < s.all {
		return true
	}
	if before, ok := s.subjects[sub]; ok && sub != "" && iat < before {
		return true
	}
	if sid != "" {
		if until, ok := s.sessUntil[sid]; ok && iat < until {
			return true
		}
	}
	return false
}

// Add records e (assigning its Seq) and returns the Seq. An entry for a
// subject that already has a later instant changes nothing but is still
// recorded, so that replicas see every revocation in order.
func (s *Set) Add(e Entry) (uint64, error) {
	if e.Subject == "" && e.Session == "" && !e.All {
		return 0, ErrEntry
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(Millis(s.now()))
	if len(s.log) >= s.cap {
		s.seq++
		s.collapseLocked(s.seq)
	}
	s.seq++
	e.Seq = s.seq
	s.applyLocked(e)
	s.log = append(s.log, e)
	s.soonest = min(s.soonest, e.Expires)
	s.notifyLocked()
	return e.Seq, nil
}

// Changed returns a channel that is closed at the next change of the set
// (a long poll waits on it).
func (s *Set) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

func (s *Set) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Set) applyLocked(e Entry) {
	switch {
	case e.All:
		if e.Before > s.all {
			s.all = e.Before
		}
		s.allExp = max(s.allExp, e.Expires)
	case e.Subject != "":
		if e.Before > s.subjects[e.Subject] {
			s.subjects[e.Subject] = e.Before
		}
		s.subjExp[e.Subject] = max(s.subjExp[e.Subject], e.Expires)
	}
	if e.Session != "" {
		s.sessions[e.Session] = max(s.sessions[e.Session], e.Expires)
		until := int64(math.MaxInt64)
		if e.Before > 0 && e.Subject == "" {
			until = e.Before
		}
		s.sessUntil[e.Session] = max(s.sessUntil[e.Session], until)
	}
}

// collapseLocked replaces every entry by one, numbered seq, that revokes
// all tokens issued before now and lives as long as the longest of them.
func (s *Set) collapseLocked(seq uint64) {
	now := Millis(s.now())
	exp := s.allExp
	for _, e := range s.log {
		exp = max(exp, e.Expires)
	}
	clear(s.subjects)
	clear(s.subjExp)
	clear(s.sessions)
	clear(s.sessUntil)
	s.log = s.log[:0]
	all := Entry{Seq: seq, All: true, Before: now, Expires: exp, Source: "cap"}
	s.all, s.allExp = max(s.all, now), exp
	s.log = append(s.log, all)
	s.soonest = all.Expires
	s.collapsed = all.Seq
}

// Expire drops the entries past their Expires.
func (s *Set) Expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(Millis(s.now()))
}

func (s *Set) expireLocked(now int64) {
	if len(s.log) == 0 || now < s.soonest {
		return // nothing has expired: no pass over the entries
	}
	kept := s.log[:0]
	for _, e := range s.log {
		if e.Expires > now {
			kept = append(kept, e)
		}
	}
	clear(s.log[len(kept):])
	s.log = kept
	s.soonest = math.MaxInt64
	for _, e := range kept {
		s.soonest = min(s.soonest, e.Expires)
	}
	for sub, exp := range s.subjExp {
		if exp <= now {
			delete(s.subjects, sub)
			delete(s.subjExp, sub)
		}
	}
	for sid, exp := range s.sessions {
		if exp <= now {
			delete(s.sessions, sid)
			delete(s.sessUntil, sid)
		}
	}
	if s.allExp <= now {
		s.all, s.allExp = 0, 0
	}
}

// Stale is false: a set the broker keeps itself is never out of date.
func (s *Set) Stale() bool { return false }

// Len is the number of live entries.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.log)
}

// Cursor is the Seq of the newest entry (0 for a new set).
func (s *Set) Cursor() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.seq
}

// Since returns the live entries after cursor, oldest first, and the new
// cursor. full is true when the caller must start over with exactly these
// entries (its cursor predates a collapse, or is ahead of this set: the
// broker restarted), false when they come on top of what it has.
func (s *Set) Since(cursor uint64) (entries []Entry, next uint64, full bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	full = cursor > s.seq || (s.collapsed != 0 && cursor < s.collapsed)
	for _, e := range s.log {
		if full || e.Seq > cursor {
			entries = append(entries, e)
		}
	}
	return entries, s.seq, full
}

// Replace makes the set exactly entries with cursor next (a replica
// starting over).
func (s *Set) Replace(entries []Entry, next uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.subjects)
	clear(s.subjExp)
	clear(s.sessions)
	clear(s.sessUntil)
	s.log = s.log[:0]
	s.soonest = math.MaxInt64
	s.all, s.allExp, s.collapsed = 0, 0, 0
	s.seq = next
	s.mergeLocked(entries)
	s.notifyLocked()
}

// Merge applies entries received from the broker's feed and moves the
// cursor to next. Entries are kept under their own Seq.
func (s *Set) Merge(entries []Entry, next uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mergeLocked(entries)
	s.seq = max(s.seq, next)
	s.notifyLocked()
}

func (s *Set) mergeLocked(entries []Entry) {
	now := Millis(s.now())
	for _, e := range entries {
		if e.Expires <= now || (e.Subject == "" && e.Session == "" && !e.All) {
			continue
		}
		if len(s.log) >= s.cap {
			s.collapseLocked(e.Seq) // a replica collapses too; the broker's numbering stays
		}
		s.applyLocked(e)
		s.log = append(s.log, e)
		s.soonest = min(s.soonest, e.Expires)
	}
}

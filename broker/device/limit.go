package device

import (
	"sync"
	"time"
)

// Limits bounds wrong user-code entries on the approval page with two
// token buckets: one per browser session, one for the whole replica. A
// bucket starts full; each wrong entry takes one token; tokens come back
// one per Refill interval.
type Limits struct {
	// SessionBurst is how many wrong entries a session may make at once.
	SessionBurst int
	// SessionRefill is how often a session gets one more.
	SessionRefill time.Duration
	// GlobalBurst is how many wrong entries every session together may make
	// at once on this replica.
	GlobalBurst int
	// GlobalRefill is how often the replica gets one more.
	GlobalRefill time.Duration
}

// DefaultLimits allow a session 5 + 600 s/120 s = 10 wrong entries over a
// code's 10-minute life, and a replica 60 + 600 s/1 s = 660: one session's
// chance of hitting a given live code is 10/20^8 ≈ 3.9e-10, a replica's
// 660/20^8 ≈ 2.6e-8 (see docs/device-flow.md).
var DefaultLimits = Limits{SessionBurst: 5, SessionRefill: 2 * time.Minute, GlobalBurst: 60, GlobalRefill: time.Second}

// bucket is one token bucket.
type bucket struct {
	tokens float64
	at     time.Time
}

// take refills b to now and takes one token if there is one.
func (b *bucket) take(now time.Time, burst int, refill time.Duration, peek bool) bool {
	if b.at.IsZero() {
		b.tokens, b.at = float64(burst), now
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(float64(burst), b.tokens+float64(d)/float64(refill))
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	if !peek {
		b.tokens--
	}
	return true
}

// limiter counts wrong user codes per session and for the replica. It
// lives in memory: each replica enforces its own budget, so a deployment
// of n replicas allows n times the replica budget (docs/device-flow.md).
type limiter struct {
	lim Limits
	now func() time.Time

	mu       sync.Mutex
	global   bucket
	sessions map[string]*bucket
}

func newLimiter(lim Limits, now func() time.Time) *limiter {
	return &limiter{lim: lim, now: now, sessions: map[string]*bucket{}}
}

// allowed reports whether the session may try a code now, without
// spending anything.
func (l *limiter) allowed(sessionID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if b, ok := l.sessions[sessionID]; ok && !b.take(now, l.lim.SessionBurst, l.lim.SessionRefill, true) {
		return false
	}
	return l.global.take(now, l.lim.GlobalBurst, l.lim.GlobalRefill, true)
}

// wrong spends one token of the session's and of the replica's budget.
func (l *limiter) wrong(sessionID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sessionBucket(sessionID).take(now, l.lim.SessionBurst, l.lim.SessionRefill, false)
	l.global.take(now, l.lim.GlobalBurst, l.lim.GlobalRefill, false)
	l.forgetFull(now)
}

// sessionBucket returns the session's bucket, creating it.
func (l *limiter) sessionBucket(id string) *bucket {
	b, ok := l.sessions[id]
	if !ok {
		b = &bucket{}
		l.sessions[id] = b
	}
	return b
}

// forgetFull drops buckets that have refilled, so that the map holds only
// sessions that guessed wrong recently.
func (l *limiter) forgetFull(now time.Time) {
	if len(l.sessions) < 1024 {
		return
	}
	full := time.Duration(l.lim.SessionBurst) * l.lim.SessionRefill
	for id, b := range l.sessions {
		if now.Sub(b.at) >= full {
			delete(l.sessions, id)
		}
	}
}

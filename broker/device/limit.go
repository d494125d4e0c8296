package device

import (
	"sync"
	"time"
)

// Limits bounds wrong user-code entries on the approval page, so that
// guessing a live code is hopeless (RFC 8628 §5.1; docs/device-flow.md,
// "The guess budget"). Three budgets stand before every lookup of an
// entered code, cheapest first:
//
//   - a token bucket per browser session, in the replica's memory;
//   - a token bucket for the replica, in its memory;
//   - a count per fixed window (DeploymentWindow, aligned on its multiples)
//     kept in the store, which every replica sharing the store (etcd)
//     adds to: the deployment's budget.
//
// An entry takes one unit of each before its code is looked up, and gets
// them back when the code exists, so only wrong entries spend them; a
// bucket starts full and gets one token back per Refill interval. Taking
// before the lookup keeps the budget exact under concurrency: an entry
// that did not get its unit is never looked up, however many arrive at
// once on however many replicas.
//
// With DefaultLimits, over one code's 10-minute life (CodeTTL) at most
// 5 + 600/120 = 10 wrong entries come from one session, and at most
// (600/60 + 1) × 60 = 660 from everyone on every replica together: a
// 600-second life overlaps at most 11 one-minute windows. That deployment
// figure does not depend on the number of replicas. With 20^8 ≈ 2.56e10
// codes, the chance that guessing during one code's life hits any of c
// codes live at once is at most 660·c / 2.56e10 ≈ 2.6e-8 · c.
//
// Replicas must agree on DeploymentWindow and DeploymentLimit (they are
// not configurable; every replica runs DefaultLimits), and their clocks
// within half a window: a replica whose clock is δ < 30 s off counts in a
// neighbouring window near the edges, which can raise the 660 to at most
// (600/60 + 2) × 60 = 720.
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
	// DeploymentLimit is how many wrong entries every session on every
	// replica together may make within one DeploymentWindow.
	DeploymentLimit int
	// DeploymentWindow is the length of the deployment budget's windows.
	DeploymentWindow time.Duration
	// CodeBurst is how many device authorizations a replica creates at
	// once, and CodeRefill how often it may create one more. A code is
	// asked for without anyone signed in (a public client only names
	// itself) and is a store record for CodeTTL, so this bounds what a
	// flood of /device/code can write: CodeBurst + CodeTTL/CodeRefill live
	// codes per replica.
	CodeBurst  int
	CodeRefill time.Duration
}

// DefaultLimits allow a session 5 + 600 s/120 s = 10 wrong entries over a
// code's 10-minute life, a replica 60 + 600 s/1 s = 660, and the whole
// deployment 60 per minute, which is at most 11 × 60 = 660 over a code's
// life however many replicas share the store. One session's chance of
// hitting a given live code is 10/20^8 ≈ 3.9e-10; the deployment's
// 660/20^8 ≈ 2.6e-8 per live code (see docs/device-flow.md). A replica
// creates 30 device authorizations at once and 5 a second after that: at
// most 30 + 600 × 5 = 3,030 live codes, about 1 MB of store, per replica.
var DefaultLimits = Limits{
	SessionBurst: 5, SessionRefill: 2 * time.Minute,
	GlobalBurst: 60, GlobalRefill: time.Second,
	DeploymentLimit: 60, DeploymentWindow: time.Minute,
	CodeBurst: 30, CodeRefill: 200 * time.Millisecond,
}

// withDefaults fills every zero field (a zero pair, for the buckets and
// the windows) from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.SessionBurst <= 0 || l.SessionRefill <= 0 {
		l.SessionBurst, l.SessionRefill = d.SessionBurst, d.SessionRefill
	}
	if l.GlobalBurst <= 0 || l.GlobalRefill <= 0 {
		l.GlobalBurst, l.GlobalRefill = d.GlobalBurst, d.GlobalRefill
	}
	if l.DeploymentLimit <= 0 || l.DeploymentWindow <= 0 {
		l.DeploymentLimit, l.DeploymentWindow = d.DeploymentLimit, d.DeploymentWindow
	}
	if l.CodeBurst <= 0 || l.CodeRefill <= 0 {
		l.CodeBurst, l.CodeRefill = d.CodeBurst, d.CodeRefill
	}
	return l
}

// issuance is the replica's bucket of device authorizations to create.
type issuance struct {
	burst  int
	refill time.Duration
	now    func() time.Time

	mu sync.Mutex
	b  bucket
}

// take spends one token, or says how long until there is one.
func (q *issuance) take() (wait time.Duration, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.b.fill(q.now(), q.burst, q.refill)
	if w := q.b.wait(q.refill); w > 0 {
		return w, false
	}
	q.b.tokens--
	return 0, true
}

// lifetimeBudget returns the most wrong entries one session, one replica
// and the whole deployment can make while a code is live (CodeTTL): a
// bucket's burst plus its refills, and the deployment's limit times the
// most windows a CodeTTL-long stretch overlaps (ceil(CodeTTL/window) + 1).
func (l Limits) lifetimeBudget() (session, replica, deployment int) {
	windows := int((CodeTTL+l.DeploymentWindow-1)/l.DeploymentWindow) + 1
	return l.SessionBurst + int(CodeTTL/l.SessionRefill),
		l.GlobalBurst + int(CodeTTL/l.GlobalRefill),
		l.DeploymentLimit * windows
}

// bucket is one token bucket.
type bucket struct {
	tokens float64
	at     time.Time
}

// fill refills b to now.
func (b *bucket) fill(now time.Time, burst int, refill time.Duration) {
	if b.at.IsZero() {
		b.tokens, b.at = float64(burst), now
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(float64(burst), b.tokens+float64(d)/float64(refill))
		b.at = now
	}
}

// wait is how long until b, filled, holds a whole token.
func (b *bucket) wait(refill time.Duration) time.Duration {
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(refill))
}

// giveBack returns one token to b.
func (b *bucket) giveBack(burst int) { b.tokens = min(float64(burst), b.tokens+1) }

// limiter holds the in-memory buckets: one per session, one for the
// replica. They are the cheap first line before the store's count: an
// entry they refuse costs no store call at all.
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

// take spends one token of the session's bucket and one of the replica's.
// When either is empty it spends nothing; wait then says how long until
// both hold one, and mine whether the session's own bucket is empty.
func (l *limiter) take(sessionID string) (ok bool, wait time.Duration, mine bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	s := l.sessionBucket(sessionID)
	s.fill(now, l.lim.SessionBurst, l.lim.SessionRefill)
	l.global.fill(now, l.lim.GlobalBurst, l.lim.GlobalRefill)
	if s.tokens < 1 || l.global.tokens < 1 {
		return false, max(s.wait(l.lim.SessionRefill), l.global.wait(l.lim.GlobalRefill)), s.tokens < 1
	}
	s.tokens--
	l.global.tokens--
	l.forgetFull(now)
	return true, 0, false
}

// giveBack returns the tokens take spent, for an entry that turned out
// not to be a guess (its code exists) or that was never answered.
func (l *limiter) giveBack(sessionID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.sessions[sessionID]; ok {
		b.giveBack(l.lim.SessionBurst)
	}
	l.global.giveBack(l.lim.GlobalBurst)
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
// sessions that entered codes recently.
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

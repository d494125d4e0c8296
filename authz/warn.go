package authz

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Rate limit of the warning logged for a refused check.
const (
	// warnEvery is the least time between two lines for one door and reason.
	warnEvery = time.Second
	// warnMaxReasons bounds the reasons tracked; past it, further reasons
	// share one budget, so that varied garbage cannot grow the map.
	warnMaxReasons = 256
)

// warnLimiter lets one warning through per door and reason per warnEvery
// and counts the ones it holds back. A misconfigured gateway sends
// thousands of bad checks a second: the log says so once a second, with
// how many it did not say.
type warnLimiter struct {
	now     func() time.Time
	mu      sync.Mutex
	reasons map[warnKey]*warnState
}

type warnKey struct {
	door   door
	reason string
}

type warnState struct {
	last       time.Time
	suppressed int
}

func newWarnLimiter(now func() time.Time) *warnLimiter {
	if now == nil {
		now = time.Now
	}
	return &warnLimiter{now: now, reasons: map[warnKey]*warnState{}}
}

// allow reports whether a warning for (d, reason) may be logged now, and
// how many were held back since the last one that was.
func (l *warnLimiter) allow(d door, reason string) (ok bool, suppressed int) {
	now := l.now()
	k := warnKey{d, reason}
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.reasons[k]
	if st == nil && len(l.reasons) >= warnMaxReasons {
		k.reason = "" // the shared budget
		st = l.reasons[k]
	}
	if st == nil {
		l.reasons[k] = &warnState{last: now}
		return true, 0
	}
	if now.Sub(st.last) < warnEvery {
		st.suppressed++
		return false, 0
	}
	suppressed, st.suppressed, st.last = st.suppressed, 0, now
	return true, suppressed
}

// warnRefused logs a check refused as malformed at warn level, rate-limited:
// a gateway sending such checks is misconfigured (or a client is forging
// gateway headers), and operators need to know which and why.
func (c *checker) warnRefused(ctx context.Context, d door, v verdict) {
	if (v.invalid == "" && !v.dec.BadPath) || !c.log.Enabled(ctx, slog.LevelWarn) {
		return
	}
	reason := v.invalid
	switch {
	case v.reqErr != nil:
		reason = v.reqErr.Error()
	case v.dec.BadPath:
		reason = reasonBadPath
	}
	ok, suppressed := c.warn.allow(d, reason)
	if !ok {
		return
	}
	c.log.LogAttrs(ctx, slog.LevelWarn, "authz check refused as malformed",
		slog.String("door", d.String()), slog.String("reason", reason), slog.Int("suppressed", suppressed))
}

package oauth

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Failed client authentication is rate-limited per client id and per source
// address (the TCP peer: behind a gateway, the gateway), so that guessing a
// secret online is hopeless: a token bucket per key, refilled over time,
// and spent only by failures. An empty bucket answers 429 with Retry-After
// before any secret is compared. The per-client budget is the larger one,
// so that one noisy source cannot lock a client out for everyone.
const (
	sourceBurst  = 10
	sourceRefill = 6 * time.Second // one more failure allowed every 6 s
	clientBurst  = 60
	clientRefill = time.Second
	// maxTracked bounds the limiter's memory; beyond it, full buckets are
	// forgotten first, then the oldest.
	maxTracked = 10_000
)

type bucket struct {
	tokens float64
	at     time.Time
}

// failureLimiter counts failed authentications.
type failureLimiter struct {
	now     func() time.Time
	mu      sync.Mutex
	buckets map[string]*bucket
}

func newFailureLimiter(now func() time.Time) *failureLimiter {
	if now == nil {
		now = time.Now
	}
	return &failureLimiter{now: now, buckets: map[string]*bucket{}}
}

func sourceKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "source " + host
}

func clientKey(id string) string {
	if len(id) > 128 {
		id = id[:128]
	}
	return "client " + id
}

// refill tops b up to now and returns its tokens.
func refill(b *bucket, now time.Time, burst int, every time.Duration) float64 {
	b.tokens = min(float64(burst), b.tokens+float64(now.Sub(b.at))/float64(every))
	b.at = now
	return b.tokens
}

func limits(key string) (int, time.Duration) {
	if key[0] == 's' {
		return sourceBurst, sourceRefill
	}
	return clientBurst, clientRefill
}

// wait returns how long keys must wait before another attempt, 0 when
// they may try now.
func (l *failureLimiter) wait(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var longest time.Duration
	for _, k := range keys {
		b, ok := l.buckets[k]
		if !ok {
			continue
		}
		burst, every := limits(k)
		if t := refill(b, now, burst, every); t < 1 {
			longest = max(longest, time.Duration((1-t)*float64(every))+time.Second/2)
		}
	}
	return longest.Round(time.Second)
}

// fail spends one token of every key.
func (l *failureLimiter) fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range keys {
		burst, every := limits(k)
		b, ok := l.buckets[k]
		if !ok {
			if len(l.buckets) >= maxTracked {
				l.forget(now)
			}
			b = &bucket{tokens: float64(burst), at: now}
			l.buckets[k] = b
		}
		refill(b, now, burst, every)
		b.tokens = max(b.tokens-1, 0)
	}
}

// forget drops full buckets (a fresh key starts full anyway), and every
// bucket when that is not enough. Filling the table takes maxTracked keys
// with failures, and each source gets only sourceBurst failures before it
// must wait, so it needs about a thousand sources to reset the limits.
func (l *failureLimiter) forget(now time.Time) {
	for k, b := range l.buckets {
		burst, every := limits(k)
		if refill(b, now, burst, every) >= float64(burst) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxTracked {
		clear(l.buckets)
	}
}

// TooManyAttempts is the 429 of a rate-limited client authentication.
func TooManyAttempts(wait time.Duration) *Error {
	return &Error{Code: "invalid_client", Description: "too many failed client authentications; retry later",
		Status: http.StatusTooManyRequests, RetryAfter: max(wait, time.Second)}
}

package authz

import (
	"sync/atomic"
	"time"
)

// clockResync bounds how long the check's wall clock runs on the monotonic
// clock alone: a step of the system clock (NTP, an operator) is seen within
// this time.
const clockResync = time.Second

// checkClock gives a check its wall-clock time and, at the end, its
// latency, with one clock read each. time.Now reads two clocks (wall and
// monotonic), time.Since one; a check needs the wall clock for token
// expiry and the monotonic one for its latency, so it reads the monotonic
// clock and derives the wall clock from a reading at most clockResync old.
// Expiry is decided in seconds, so the derived clock's drift over that
// second does not matter.
type checkClock struct {
	epoch time.Time // a reading with a monotonic part: what Since counts from
	base  atomic.Pointer[wallBase]
}

// wallBase is a wall-clock reading and the monotonic time it was taken at.
type wallBase struct {
	wall time.Time     // monotonic part stripped: comparisons use the wall clock
	at   time.Duration // since checkClock.epoch
}

func newCheckClock() *checkClock {
	c := &checkClock{epoch: time.Now()}
	c.resync()
	return c
}

// now returns the wall-clock time and the monotonic time since the epoch,
// the argument of since.
func (c *checkClock) now() (time.Time, time.Duration) {
	m := time.Since(c.epoch)
	if b := c.base.Load(); m >= b.at && m-b.at < clockResync {
		return b.wall.Add(m - b.at), m
	}
	return c.resync()
}

// resync takes a fresh wall-clock reading.
func (c *checkClock) resync() (time.Time, time.Duration) {
	t := time.Now()
	b := &wallBase{wall: t.Round(0), at: t.Sub(c.epoch)}
	c.base.Store(b)
	return b.wall, b.at
}

// since is the time elapsed since m, a monotonic time now returned.
func (c *checkClock) since(m time.Duration) time.Duration {
	return time.Since(c.epoch) - m
}

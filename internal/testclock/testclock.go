// Package testclock is a hand-driven clock for tests: components take a
// `Now func() time.Time`, tests pass Clock.Now and move time with Advance
// instead of sleeping.
package testclock

import (
	"sync"
	"time"
)

// Clock is a hand-driven clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock reading t.
func New(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

package authz

import (
	"testing"
	"time"
)

func TestCheckClockFollowsTheWallClock(t *testing.T) {
	c := newCheckClock()
	for range 3 {
		before := time.Now()
		got, m := c.now()
		after := time.Now()
		// The derived time may be a hair off the reading that bounds it,
		// never by more than the drift of one resync period.
		if got.Before(before.Add(-time.Millisecond)) || got.After(after.Add(time.Millisecond)) {
			t.Fatalf("now() = %v, outside [%v, %v]", got, before, after)
		}
		if got.Location() != time.Local || got != got.Round(0) {
			t.Errorf("now() = %#v: want a wall-clock time without a monotonic part", got)
		}
		if d := c.since(m); d < 0 || d > time.Second {
			t.Errorf("since = %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A step of the system clock is seen within clockResync: a base that is
// off by an hour stops being used once it is that old.
func TestCheckClockResyncs(t *testing.T) {
	c := newCheckClock()
	_, m := c.now()
	c.base.Store(&wallBase{wall: time.Now().Add(time.Hour).Round(0), at: m - clockResync})
	got, _ := c.now()
	if d := time.Since(got); d < -time.Second || d > time.Second {
		t.Fatalf("after a stale base, now() is %v off the wall clock", d)
	}
	// A fresh base is used as is: the derived clock runs on it.
	_, m = c.now()
	c.base.Store(&wallBase{wall: time.Now().Add(time.Hour).Round(0), at: m})
	if got, _ := c.now(); time.Until(got) < 59*time.Minute {
		t.Fatalf("a fresh base was not used: now() = %v", got)
	}
	// A base taken after this reading (another check's resync) is not
	// extrapolated backwards.
	c.base.Store(&wallBase{wall: time.Now().Add(time.Hour).Round(0), at: m + time.Hour})
	if got, _ := c.now(); time.Until(got) > time.Second {
		t.Fatalf("a base from the future was used: now() = %v", got)
	}
}

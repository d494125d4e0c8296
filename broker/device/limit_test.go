package device

import (
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/internal/testclock"
)

func TestLimiter(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	l := newLimiter(Limits{SessionBurst: 2, SessionRefill: time.Minute, GlobalBurst: 3, GlobalRefill: 10 * time.Second}, clock.Now)
	for range 2 {
		if !l.allowed("a") {
			t.Fatal("a refused within its burst")
		}
		l.wrong("a")
	}
	if l.allowed("a") {
		t.Fatal("a allowed past its burst")
	}
	if !l.allowed("b") {
		t.Fatal("b refused for a's guesses")
	}
	l.wrong("b")
	// The replica's budget (3) is spent now, for everyone.
	if l.allowed("c") {
		t.Fatal("c allowed past the replica's budget")
	}
	clock.Advance(10 * time.Second)
	if !l.allowed("c") || l.allowed("a") {
		t.Fatal("after 10 s: c should have the replica's new token, a none of its own")
	}
	clock.Advance(50 * time.Second)
	if !l.allowed("a") {
		t.Fatal("a refused after a minute's refill")
	}
}

// TestDefaultBudget pins the budget docs/device-flow.md states.
func TestDefaultBudget(t *testing.T) {
	perSession := DefaultLimits.SessionBurst + int(CodeTTL/DefaultLimits.SessionRefill)
	perReplica := DefaultLimits.GlobalBurst + int(CodeTTL/DefaultLimits.GlobalRefill)
	if perSession != 10 || perReplica != 660 {
		t.Errorf("budget over a code's life: %d per session, %d per replica; docs say 10 and 660", perSession, perReplica)
	}
}

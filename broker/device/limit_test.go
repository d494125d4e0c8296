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
		if ok, _, _ := l.take("a"); !ok {
			t.Fatal("a refused within its burst")
		}
	}
	if ok, wait, mine := l.take("a"); ok || !mine || wait != time.Minute {
		t.Fatalf("a past its burst: %v, wait %s, its own bucket %v; want refused for a minute by its own bucket", ok, wait, mine)
	}
	// A refused take spends nothing: b still finds the replica's last
	// token.
	if ok, _, _ := l.take("b"); !ok {
		t.Fatal("b refused for a's guesses")
	}
	if ok, wait, mine := l.take("c"); ok || mine || wait != 10*time.Second {
		t.Fatalf("c past the replica's budget: %v, wait %s, own bucket %v; want refused for 10s by the replica's", ok, wait, mine)
	}
	// Giving back (a code that existed) restores both buckets.
	l.giveBack("b")
	if ok, _, _ := l.take("c"); !ok {
		t.Fatal("c refused after b gave its entry back")
	}
	clock.Advance(10 * time.Second)
	if ok, _, _ := l.take("a"); ok {
		t.Fatal("a allowed before its own refill")
	}
	clock.Advance(50 * time.Second)
	if ok, _, _ := l.take("a"); !ok {
		t.Fatal("a refused after a minute's refill")
	}
	// Giving back never overfills.
	for range 5 {
		l.giveBack("c")
	}
	for i := range 2 {
		if ok, _, _ := l.take("c"); !ok {
			t.Fatalf("c's take %d refused", i)
		}
	}
	if ok, _, mine := l.take("c"); ok || !mine {
		t.Fatal("c's bucket overfilled by gifts")
	}
}

// TestDefaultBudget pins the budget docs/device-flow.md states.
func TestDefaultBudget(t *testing.T) {
	session, replica, deployment := DefaultLimits.lifetimeBudget()
	if session != 10 || replica != 660 || deployment != 660 {
		t.Errorf("budget over a code's life: %d per session, %d per replica, %d for the deployment; docs say 10, 660 and 660", session, replica, deployment)
	}
	// A life that is not a whole number of windows overlaps one more.
	if _, _, d := (Limits{SessionBurst: 1, SessionRefill: time.Second, GlobalBurst: 1, GlobalRefill: time.Second, DeploymentLimit: 10, DeploymentWindow: 7 * time.Minute}).lifetimeBudget(); d != 30 {
		t.Errorf("7-minute windows over a 10-minute life: %d, want 3 windows × 10", d)
	}
}

func TestLimitsDefaults(t *testing.T) {
	got := Limits{SessionBurst: 3, SessionRefill: time.Minute}.withDefaults()
	want := DefaultLimits
	want.SessionBurst, want.SessionRefill = 3, time.Minute
	if got != want {
		t.Errorf("withDefaults = %+v, want %+v", got, want)
	}
	if got := (Limits{}).withDefaults(); got != DefaultLimits {
		t.Errorf("zero Limits = %+v, want DefaultLimits", got)
	}
}

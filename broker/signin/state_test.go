package signin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/store/memory"
)

// TestStateSealer: a sealed pending sign-in opens only under the cookie
// name it was sealed for, only unmodified, and only within the current or
// the previous key period.
func TestStateSealer(t *testing.T) {
	ctx := context.Background()
	s := newStateSealer(memory.New(memory.Options{}))
	now := time.Unix(1_800_000_000, 0)
	p := pendingSignIn{State: "s0123456789abcdef", Verifier: "v", RedirectTo: "https://app.example.com/", Expires: now.Unix() + 600}
	v, err := s.seal(ctx, now, "_ghbroker_state.s012345678", p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.open(ctx, now, "_ghbroker_state.s012345678", v); err != nil || got != p {
		t.Fatalf("open = %+v, %v", got, err)
	}
	if _, err := s.open(ctx, now.Add(statePeriod), "_ghbroker_state.s012345678", v); err != nil {
		t.Errorf("the previous period's key must still open: %v", err)
	}
	for name, tc := range map[string]struct {
		at          time.Time
		cookie, val string
	}{
		"other cookie name": {now, "_ghbroker_state.other00000", v},
		"two periods later": {now.Add(2 * statePeriod), "_ghbroker_state.s012345678", v},
		"flipped byte":      {now, "_ghbroker_state.s012345678", v[:len(v)-3] + flip(v[len(v)-3]) + v[len(v)-2:]},
		"no period":         {now, "_ghbroker_state.s012345678", v[strings.Index(v, ".")+1:]},
		"garbage":           {now, "_ghbroker_state.s012345678", "1.%%%"},
		"huge":              {now, "_ghbroker_state.s012345678", v + strings.Repeat("A", maxStateCookie)},
	} {
		if _, err := s.open(ctx, tc.at, tc.cookie, tc.val); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

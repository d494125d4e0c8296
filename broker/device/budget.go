package device

import (
	"context"
	"time"

	"github.com/ghbroker/ghbroker/store"
)

// budget is the deployment's budget of user-code entries: a counter per
// window in the store, so that every replica sharing the store spends the
// same one (see Limits).
type budget struct {
	counters store.CounterStore
	limit    int
	window   time.Duration
	now      func() time.Time
}

// slot is one entry's unit of a window's budget.
type slot struct {
	// id is the window's counter.
	id string
	// expires is when the counter may go: one window after the window
	// ends, so that a replica whose clock lags still finds the count
	// rather than starting the window again from 0.
	expires time.Time
}

// counterPrefix names the windows' counters.
const counterPrefix = "device-user-code-entries@"

// reserve takes one unit of the current window's budget. ok is false when
// the window's budget is spent; wait then says how long until the next
// window.
func (b *budget) reserve(ctx context.Context) (sl slot, ok bool, wait time.Duration, err error) {
	now := b.now()
	start := now.Truncate(b.window)
	sl = slot{id: counterPrefix + start.UTC().Format(time.RFC3339Nano), expires: start.Add(2 * b.window)}
	_, ok, err = b.counters.AddToCounter(ctx, sl.id, 1, b.limit, sl.expires)
	return sl, ok, start.Add(b.window).Sub(now), err
}

// release gives back the unit reserve took, for an entry that found its
// code. Late, it gives back to a window no longer in use (or to a
// counter already gone, which changes nothing): harmless either way.
func (b *budget) release(ctx context.Context, sl slot) error {
	_, _, err := b.counters.AddToCounter(ctx, sl.id, -1, b.limit, sl.expires)
	return err
}

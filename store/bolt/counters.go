package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ghbroker/ghbroker/store"
)

// AddToCounter adds delta to the live counter id, within 0 and limit. A
// read-only transaction answers a call that would add nothing (the budget
// is spent, say) without taking bbolt's single writer lock; any other
// call reads and writes the counter in one write transaction.
func (s *Store) AddToCounter(ctx context.Context, id string, delta, limit int, expires time.Time) (int, bool, error) {
	const op = "add to counter"
	if id == "" {
		return 0, false, fmt.Errorf("store/bolt: %s: empty id", op)
	}
	now := s.now()
	var (
		c     store.Counter
		added bool
	)
	// step reads the counter into c and reports whether delta fits.
	step := func(tx *bbolt.Tx) (bool, error) {
		c = store.Counter{ID: id, Expires: expires}
		data, err := live(tx.Bucket(bucketCounters), id, now)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return false, err
		default:
			if err := json.Unmarshal(data, &c); err != nil {
				return false, fmt.Errorf("decode record: %w", err)
			}
		}
		next := c.N + delta
		return next >= 0 && next <= limit, nil
	}
	err := s.view(ctx, op, func(tx *bbolt.Tx) error {
		var err error
		added, err = step(tx)
		return err
	})
	if err != nil {
		return 0, false, err
	}
	if !added || delta == 0 {
		return c.N, added, nil
	}
	err = s.update(ctx, op, func(tx *bbolt.Tx) error {
		var err error
		if added, err = step(tx); err != nil || !added {
			return err // another writer took the room meanwhile
		}
		c.N += delta
		data, _, err := encode(c)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketCounters).Put([]byte(id), data)
	})
	if err != nil {
		return 0, false, err
	}
	return c.N, added, nil
}

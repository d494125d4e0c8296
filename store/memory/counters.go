package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ghbroker/ghbroker/store"
)

// AddToCounter adds delta to the live counter id, within 0 and limit,
// under the store's mutex.
func (s *Store) AddToCounter(ctx context.Context, id string, delta, limit int, expires time.Time) (int, bool, error) {
	if id == "" {
		return 0, false, fmt.Errorf("store/memory: add to %s: empty id", counters)
	}
	if err := s.lock(ctx); err != nil {
		return 0, false, err
	}
	defer s.mu.Unlock()
	c := store.Counter{ID: id, Expires: expires}
	if r, ok := s.live(counters, id); ok {
		if err := json.Unmarshal(r.data, &c); err != nil {
			return 0, false, fmt.Errorf("store/memory: decode %s: %w", counters, err)
		}
	}
	next := c.N + delta
	if next < 0 || next > limit {
		return c.N, false, nil
	}
	if delta == 0 {
		return c.N, true, nil
	}
	c.N = next
	data, h, err := encode(counters, c)
	if err != nil {
		return 0, false, err
	}
	s.tables[counters][id] = row{data: data, expires: h.Expires}
	return c.N, true, nil
}

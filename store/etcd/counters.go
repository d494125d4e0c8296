package etcd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ghbroker/ghbroker/store"
)

// counterRecord is a store.Counter as etcd keeps it. W, drawn afresh for
// every write, makes each value written unique, so that a write whose
// outcome is unknown (the connection broke after it was sent) is told
// apart from another replica's write of the same count by reading the key
// back.
type counterRecord struct {
	store.Counter
	W string `json:"w"`
}

// AddToCounter adds delta to the live counter id, within 0 and limit, by
// compare-and-swap on the key's ModRevision (a create on an absent key):
// a writer that lost reads the winner's count and tries again, with the
// backoff and the attempt budget of every read-modify-write here. A new
// counter goes on the shared lease of its expiry's bucket (leases.go), so
// that etcd deletes it. The read before the first attempt is
// linearizable: a call that cannot add (the budget is spent) answers from
// it and writes nothing.
func (s *Store) AddToCounter(ctx context.Context, id string, delta, limit int, expires time.Time) (int, bool, error) {
	const op = "add to counter"
	if id == "" {
		return 0, false, fmt.Errorf("store/etcd: %s: %w", op, invalid("empty id"))
	}
	key := s.key(kindCounters, id)
	var (
		n     int
		added bool
	)
	err := s.do(ctx, op, func(ctx context.Context) error {
		unlock, err := s.lockKey(ctx, key)
		if err != nil {
			return err
		}
		defer unlock()
		kv, err := s.getKV(ctx, key)
		if err != nil {
			return err
		}
		l := &callLease{s: s, n: 1}
		// lost maps each value sent whose answer was lost to its count:
		// finding one stored means that attempt committed, if late.
		lost := map[string]int{}
		for attempt, unsure := 1, 0; ; attempt++ {
			c, live, err := s.liveCounter(kv, id, expires)
			if err != nil {
				return err
			}
			next := c.N + delta
			if fits := next >= 0 && next <= limit; !fits || delta == 0 {
				n, added = c.N, fits
				return nil
			}
			data, _, err := encode(counterRecord{
				Counter: store.Counter{ID: id, N: next, Expires: c.Expires},
				W:       strconv.FormatUint(rand.Uint64(), 36),
			})
			if err != nil {
				return err
			}
			// A live counter stays on its lease; a new one, or one that
			// expired by the store's clock before etcd deleted it, gets a
			// lease for its expiry.
			cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
			if kv != nil {
				cmp = clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)
			}
			var leaseID clientv3.LeaseID
			if live {
				leaseID = clientv3.LeaseID(kv.Lease)
			} else if leaseID, err = l.get(ctx, c.Expires); err != nil {
				return err
			}
			resp, err := within(s, ctx, func(cc context.Context) (*clientv3.TxnResponse, error) {
				return s.cli.Txn(cc).If(cmp).
					Then(clientv3.OpPut(key, data, clientv3.WithLease(leaseID))).
					Else(clientv3.OpGet(key)).
					Commit()
			})
			if transient(err) {
				// Done or not? Our value (unique by W) means it committed;
				// the version we read means it did not yet (try again);
				// anything else is another writer's.
				lost[data] = next
				cur, rerr := s.getKV(ctx, key)
				switch {
				case rerr != nil:
					return err
				case cur != nil && isLost(lost, cur):
					n, added = lost[string(cur.Value)], true
					return nil
				case sameVersion(cur, kv):
					if !s.again(ctx, unsure) {
						return err
					}
					unsure++
					continue
				default:
					resp, err = nil, nil
					kv = cur
				}
			}
			switch {
			case resp == nil && err == nil:
				// Another writer's value, read back above.
			case errors.Is(err, rpctypes.ErrLeaseNotFound):
				// The counter's lease fired after the read (it expired),
				// or the pooled lease for a new one is gone: read again,
				// and put it on a fresh lease if one is needed.
				if !live && !l.gone(err) {
					return err
				}
				if kv, err = s.getKV(ctx, key); err != nil {
					return err
				}
			case err != nil:
				return err
			case resp.Succeeded:
				n, added = next, true
				return nil
			default:
				kv = elseKV(resp, 0)
				if kv != nil && isLost(lost, kv) {
					// An attempt whose answer was lost committed late.
					n, added = lost[string(kv.Value)], true
					return nil
				}
			}
			if err := s.backoff(ctx, attempt); err != nil {
				return err
			}
		}
	})
	if err != nil {
		return 0, false, err
	}
	return n, added, nil
}

// liveCounter decodes kv as counter id. A missing or expired one is a
// counter at 0 expiring at expires, and live is false.
func (s *Store) liveCounter(kv *mvccpb.KeyValue, id string, expires time.Time) (c store.Counter, live bool, err error) {
	var rec counterRecord
	switch _, err := s.live(kv, &rec); {
	case errors.Is(err, store.ErrNotFound):
		return store.Counter{ID: id, Expires: expires}, false, nil
	case err != nil:
		return store.Counter{}, false, err
	}
	return rec.Counter, true, nil
}

// sameVersion reports whether a and b are the same version of a key (both
// absent, or both at one ModRevision).
func sameVersion(a, b *mvccpb.KeyValue) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ModRevision == b.ModRevision
}

// isLost reports whether kv holds one of the values whose answer was lost.
func isLost(lost map[string]int, kv *mvccpb.KeyValue) bool {
	_, ok := lost[string(kv.Value)]
	return ok
}

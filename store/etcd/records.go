package etcd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ghbroker/ghbroker/store"
)

// Backoff between attempts of a transaction that lost to another writer:
// full jitter over an exponentially growing window.
const (
	backoffBase = time.Millisecond
	backoffCap  = 25 * time.Millisecond
)

// errContention is what a read-modify-write returns when it lost more
// often than MaxAttempts allows; it is reported as store.ErrUnavailable.
var errContention = errors.New("too many conflicting writers")

// backoff waits before attempt+1 of a transaction, or fails when attempt
// was the last one allowed or ctx ends first.
func (s *Store) backoff(ctx context.Context, attempt int) error {
	if attempt >= s.maxAttempts {
		s.metrics.exhausted.Inc()
		return fmt.Errorf("%w: gave up after %d attempts", errContention, attempt)
	}
	s.metrics.conflicts.Inc()
	window := min(backoffCap, backoffBase<<min(attempt, 16))
	t := time.NewTimer(rand.N(window) + time.Microsecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// getKV returns the stored key, or nil when it is absent.
func (s *Store) getKV(ctx context.Context, key string) (*mvccpb.KeyValue, error) {
	var kv *mvccpb.KeyValue
	err := s.repeat(ctx, func() error {
		resp, err := within(s, ctx, func(c context.Context) (*clientv3.GetResponse, error) { return s.cli.Get(c, key) })
		if err == nil {
			kv = first(resp.Kvs)
		}
		return err
	})
	return kv, err
}

// first returns the first of kvs, or nil.
func first(kvs []*mvccpb.KeyValue) *mvccpb.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	return kvs[0]
}

// elseKV returns the key read by the Else branch of a transaction that
// failed, or nil when it is absent.
func elseKV(resp *clientv3.TxnResponse, i int) *mvccpb.KeyValue {
	return first(resp.Responses[i].GetResponseRange().Kvs)
}

// live decodes kv into v (when v is not nil) and returns its header, or
// store.ErrNotFound when kv is nil or expired by the store's clock (its
// lease has not fired yet).
func (s *Store) live(kv *mvccpb.KeyValue, v any) (header, error) {
	if kv == nil {
		return header{}, store.ErrNotFound
	}
	h, err := decode(kv.Value, v)
	if err != nil {
		return header{}, err
	}
	if h.Expires.Before(s.now()) {
		return header{}, store.ErrNotFound
	}
	return h, nil
}

// create stores v, a record of kind, unless a live record has its id.
func (s *Store) create(ctx context.Context, kind string, v any) error {
	op := "create " + kind
	data, h, err := encode(v)
	if err == nil && h.ID == "" {
		err = invalid("empty id")
	}
	if err != nil {
		return fmt.Errorf("store/etcd: %s: %w", op, err)
	}
	return s.do(ctx, op, func(ctx context.Context) error {
		return s.createAll(ctx, []string{s.key(kind, h.ID)}, []string{data}, h.Expires)
	})
}

// createAll puts values at keys, all on one pooled lease for expires, in
// one transaction, provided every key is absent or holds a record that
// expired by the store's clock; store.ErrAlreadyExists when one holds a
// live record. Each value carries a nonce (see encode), so that finding
// values[0] at keys[0] means this call wrote it.
func (s *Store) createAll(ctx context.Context, keys, values []string, expires time.Time) error {
	l := &callLease{s: s, n: len(keys)}
	cmps := make([]clientv3.Cmp, len(keys))
	puts := make([]clientv3.Op, len(keys))
	gets := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		cmps[i] = clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
		gets[i] = clientv3.OpGet(k)
	}
	for attempt, unsure := 1, 0; ; attempt++ {
		id, err := l.get(ctx, expires)
		if err != nil {
			return err
		}
		for i, k := range keys {
			puts[i] = clientv3.OpPut(k, values[i], clientv3.WithLease(id))
		}
		resp, err := within(s, ctx, func(c context.Context) (*clientv3.TxnResponse, error) {
			return s.cli.Txn(c).If(cmps...).Then(puts...).Else(gets...).Commit()
		})
		var current []*mvccpb.KeyValue
		switch {
		case transient(err):
			// Done or not? The transaction is atomic: read the first key
			// back; our value there means it committed.
			kv, rerr := s.getKV(ctx, keys[0])
			if rerr != nil {
				return err
			}
			if kv != nil && string(kv.Value) == values[0] {
				return nil
			}
			if !s.again(ctx, unsure) {
				return err
			}
			unsure++
			for _, k := range keys {
				kv, rerr := s.getKV(ctx, k)
				if rerr != nil {
					return err
				}
				current = append(current, kv)
			}
		case l.gone(err):
			// The pooled lease was revoked: once more, on a fresh one.
			continue
		case err != nil:
			return err
		case resp.Succeeded:
			return nil
		}
		if current == nil {
			for i := range keys {
				current = append(current, elseKV(resp, i))
			}
		}
		if kv := current[0]; kv != nil && string(kv.Value) == values[0] {
			// An earlier attempt, whose answer was lost, committed after
			// all.
			return nil
		}
		for i, k := range keys {
			kv := current[i]
			if kv == nil {
				cmps[i] = clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
				continue
			}
			switch _, err := s.live(kv, nil); {
			case err == nil:
				return store.ErrAlreadyExists
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
			// Expired, its lease not fired yet: replace exactly that
			// version. Its lease is left alone: others may share it.
			cmps[i] = clientv3.Compare(clientv3.ModRevision(k), "=", kv.ModRevision)
		}
		if err := s.backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// get returns the live record id of kind.
func get[T any](ctx context.Context, s *Store, kind, id string) (T, error) {
	var v T
	err := s.do(ctx, "get "+kind, func(ctx context.Context) error {
		kv, err := s.getKV(ctx, s.key(kind, id))
		if err != nil {
			return err
		}
		_, err = s.live(kv, &v)
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// update runs fn on the live record id of kind and stores its result, by
// compare-and-swap on the key's ModRevision: when another writer got there
// first, fn runs again on what that writer stored. A changed Expires moves
// the record to the pooled lease of its new bucket; the old lease, shared,
// is left to end by itself.
func update[T any](ctx context.Context, s *Store, kind, id string, fn func(T) (T, error)) error {
	key := s.key(kind, id)
	return s.do(ctx, "update "+kind, func(ctx context.Context) error {
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
		// pending is an attempt whose answer was lost while the record
		// still stood at the revision it compared against: it may yet
		// commit, so it is sent again as it was, never recomputed. A
		// recomputation would run fn a second time, on the record as
		// the first attempt left it if that attempt committed late (a
		// refresh rotation would then take its own new token for a
		// reused one).
		var pending struct {
			data    string
			leaseID clientv3.LeaseID
		}
		// lost holds every value sent whose answer was lost: finding one
		// of them stored means that attempt committed.
		var lost []string
		for attempt, unsure := 1, 0; ; attempt++ {
			data, leaseID := pending.data, pending.leaseID
			if data == "" {
				var old T
				oh, err := s.live(kv, &old)
				if err != nil {
					return err
				}
				v, err := fn(old)
				if err != nil {
					return &callerError{err}
				}
				var h header
				if data, h, err = encode(v); err != nil {
					return err
				}
				if h.ID != id {
					return invalid("the update changed the record's id")
				}
				leaseID = clientv3.LeaseID(kv.Lease)
				if !h.Expires.Equal(oh.Expires) {
					if leaseID, err = l.get(ctx, h.Expires); err != nil {
						return err
					}
				}
			}
			pending.data, pending.leaseID = "", 0
			resp, err := within(s, ctx, func(c context.Context) (*clientv3.TxnResponse, error) {
				return s.cli.Txn(c).
					If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
					Then(clientv3.OpPut(key, data, clientv3.WithLease(leaseID))).
					Else(clientv3.OpGet(key)).
					Commit()
			})
			if transient(err) {
				// Done or not? Read the key back: our value at a newer
				// revision means it committed; the revision we read means
				// it did not yet (send it again); anything else is
				// another writer's, as after a lost compare-and-swap.
				lost = append(lost, data)
				cur, rerr := s.getKV(ctx, key)
				switch {
				case rerr != nil:
					return err
				case cur != nil && cur.ModRevision != kv.ModRevision && slices.Contains(lost, string(cur.Value)):
					resp, err = &clientv3.TxnResponse{Succeeded: true}, nil
				case cur != nil && cur.ModRevision == kv.ModRevision:
					if !s.again(ctx, unsure) {
						return err
					}
					unsure++
					pending.data, pending.leaseID = data, leaseID
					continue
				default:
					resp, err = nil, nil
					kv = cur
				}
			}
			switch {
			case resp == nil && err == nil:
				// Another writer's value, read back above.
			case leaseID != clientv3.LeaseID(kv.Lease) && errors.Is(err, rpctypes.ErrLeaseNotFound):
				// The pooled lease of the new expiry was revoked: once
				// more, on a fresh one.
				if !l.gone(err) {
					return err
				}
				continue
			case errors.Is(err, rpctypes.ErrLeaseNotFound):
				// The record's lease fired (or was revoked) after the
				// read: read again.
				if kv, err = s.getKV(ctx, key); err != nil {
					return err
				}
			case err != nil:
				return err
			case resp.Succeeded:
				return nil
			default:
				kv = elseKV(resp, 0)
				if kv != nil && slices.Contains(lost, string(kv.Value)) {
					// An attempt whose answer was lost committed after
					// all (this one was its resending, or lost to it).
					return nil
				}
			}
			if err := s.backoff(ctx, attempt); err != nil {
				return err
			}
		}
	})
}

// remove deletes the live record id of kind. Of several concurrent calls,
// exactly one succeeds: the delete is guarded by the ModRevision it read,
// and its delete count decides.
func (s *Store) remove(ctx context.Context, kind, id string) error {
	key := s.key(kind, id)
	return s.do(ctx, "delete "+kind, func(ctx context.Context) error {
		unlock, err := s.lockKey(ctx, key)
		if err != nil {
			return err
		}
		defer unlock()
		kv, err := s.getKV(ctx, key)
		if err != nil {
			return err
		}
		for attempt, unsure := 1, 0; ; attempt++ {
			if _, err := s.live(kv, nil); err != nil {
				return err
			}
			resp, err := within(s, ctx, func(c context.Context) (*clientv3.TxnResponse, error) {
				return s.cli.Txn(c).
					If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
					Then(clientv3.OpDelete(key)).
					Else(clientv3.OpGet(key)).
					Commit()
			})
			if transient(err) {
				// Still the version we read: the delete did not happen,
				// try again. Gone or changed: whether it was this delete
				// is unknown, and only one delete may report success.
				cur, rerr := s.getKV(ctx, key)
				if rerr == nil && cur != nil && cur.ModRevision == kv.ModRevision && s.again(ctx, unsure) {
					unsure++
					continue
				}
				return err
			}
			if err != nil {
				return err
			}
			if resp.Succeeded {
				if resp.Responses[0].GetResponseDeleteRange().Deleted != 1 {
					return store.ErrNotFound
				}
				// The record's lease stays: others share it.
				return nil
			}
			kv = elseKV(resp, 0)
			if err := s.backoff(ctx, attempt); err != nil {
				return err
			}
		}
	})
}

// CreateSession stores a new session; store.ErrAlreadyExists when a live
// one has its ID.
func (s *Store) CreateSession(ctx context.Context, v store.Session) error {
	return s.create(ctx, kindSessions, v)
}

// GetSession returns the live session id.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	return get[store.Session](ctx, s, kindSessions, id)
}

// UpdateSession runs fn on the live session id and stores its result by
// compare-and-swap; fn may run more than once.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(store.Session) (store.Session, error)) error {
	return update(ctx, s, kindSessions, id, fn)
}

// DeleteSession deletes the live session id.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.remove(ctx, kindSessions, id)
}

// ListSessions returns every live session.
func (s *Store) ListSessions(ctx context.Context) ([]store.Session, error) {
	return list[store.Session](ctx, s, kindSessions)
}

// list returns every live record of kind.
func list[T any](ctx context.Context, s *Store, kind string) ([]T, error) {
	var out []T
	err := s.do(ctx, "list "+kind, func(ctx context.Context) error {
		out = out[:0]
		resp, err := s.cli.Get(ctx, s.prefix+kind+"/", clientv3.WithPrefix())
		if err != nil {
			return err
		}
		add := collect(s, &out)
		for _, kv := range resp.Kvs {
			if err := add(kv.Value); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// CreateAuthCode stores a new authorization code.
func (s *Store) CreateAuthCode(ctx context.Context, v store.AuthCode) error {
	return s.create(ctx, kindCodes, v)
}

// UpdateAuthCode runs fn on the live code id and stores its result by
// compare-and-swap; fn may run more than once. Of several concurrent
// redemptions that mark a code used, exactly one sees it unused.
func (s *Store) UpdateAuthCode(ctx context.Context, id string, fn func(store.AuthCode) (store.AuthCode, error)) error {
	return update(ctx, s, kindCodes, id, fn)
}

// CreateRefreshFamily stores a new refresh family.
func (s *Store) CreateRefreshFamily(ctx context.Context, v store.RefreshFamily) error {
	return s.create(ctx, kindFamilies, v)
}

// GetRefreshFamily returns the live refresh family id.
func (s *Store) GetRefreshFamily(ctx context.Context, id string) (store.RefreshFamily, error) {
	return get[store.RefreshFamily](ctx, s, kindFamilies, id)
}

// UpdateRefreshFamily runs fn on the live refresh family id and stores its
// result by compare-and-swap; fn may run more than once.
func (s *Store) UpdateRefreshFamily(ctx context.Context, id string, fn func(store.RefreshFamily) (store.RefreshFamily, error)) error {
	return update(ctx, s, kindFamilies, id, fn)
}

// DeleteRefreshFamily deletes the live refresh family id.
func (s *Store) DeleteRefreshFamily(ctx context.Context, id string) error {
	return s.remove(ctx, kindFamilies, id)
}

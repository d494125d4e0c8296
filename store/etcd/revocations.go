package etcd

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ghbroker/ghbroker/store"
)

// The revocation set and the webhook deliveries already applied.

// AddRevocation stores a revocation entry on a lease until it expires;
// every replica's WatchRevocations sees it.
func (s *Store) AddRevocation(ctx context.Context, r store.Revocation) error {
	return s.create(ctx, kindRevocations, r)
}

// Revocations returns every live revocation entry.
func (s *Store) Revocations(ctx context.Context) ([]store.Revocation, error) {
	return list[store.Revocation](ctx, s, kindRevocations)
}

// WatchRevocations sends each revocation entry added, by any process,
// until ctx ends or the store closes. A zero Revocation says the watch is
// established (first, or again after an interruption): entries added
// before it are for the caller to read then.
func (s *Store) WatchRevocations(ctx context.Context) <-chan store.Revocation {
	ch := make(chan store.Revocation, 256)
	s.wg.Go(func() {
		defer close(ch)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-ctx.Done():
			case <-s.bg.Done():
				cancel()
			}
		}()
		send := func(r store.Revocation) bool {
			select {
			case ch <- r:
				return true
			case <-ctx.Done():
				return false
			}
		}
		wait := time.Second
		for ctx.Err() == nil && !s.closed.Load() {
			for resp := range s.cli.Watch(clientv3.WithRequireLeader(ctx), s.prefix+kindRevocations+"/", clientv3.WithPrefix(), clientv3.WithCreatedNotify()) {
				if err := resp.Err(); err != nil {
					s.log.Warn("etcd store: watch of the revocations interrupted; re-establishing it", "err", err)
					break
				}
				if resp.Created {
					// Established (again): whatever was added before is for
					// the caller to read now.
					wait = time.Second
					if !send(store.Revocation{}) {
						return
					}
					continue
				}
				for _, ev := range resp.Events {
					if ev.Type != clientv3.EventTypePut {
						continue
					}
					var r store.Revocation
					if _, err := decode(ev.Kv.Value, &r); err != nil {
						continue
					}
					if !send(r) {
						return
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			wait = min(2*wait, 10*time.Second)
		}
	})
	return ch
}

// FirstDelivery records a webhook delivery id and reports whether it was
// new: a create-if-absent transaction, so that of replicas receiving the
// same delivery exactly one is told true.
func (s *Store) FirstDelivery(ctx context.Context, id string, expires time.Time) (bool, error) {
	err := s.create(ctx, kindDeliveries, store.Delivery{ID: id, Expires: expires})
	if errors.Is(err, store.ErrAlreadyExists) {
		return false, nil
	}
	return err == nil, err
}

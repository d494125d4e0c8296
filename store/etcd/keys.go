package etcd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ghbroker/ghbroker/store"
)

// GetKeys returns the key set, or store.ErrNotFound before the first
// update.
func (s *Store) GetKeys(ctx context.Context) (store.Keys, error) {
	var k store.Keys
	err := s.do(ctx, "get keys", func(ctx context.Context) error {
		kv, err := s.getKV(ctx, s.keysKey())
		if err != nil {
			return err
		}
		if kv == nil {
			return store.ErrNotFound
		}
		return decodeKeys(kv.Value, &k)
	})
	if err != nil {
		return store.Keys{}, err
	}
	return k, nil
}

// decodeKeys unwraps a stored key set.
func decodeKeys(raw []byte, k *store.Keys) error {
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil || e.V != recordVersion {
		return invalid("decode keys: not a version %d envelope", recordVersion)
	}
	if err := json.Unmarshal(e.R, k); err != nil {
		return invalid("decode keys: %v", err)
	}
	return nil
}

// UpdateKeys runs fn on the key set (the zero Keys when there is none) and
// stores its result by compare-and-swap: when another replica rotated
// first, fn runs again on that replica's key set, so that a rotation due
// once happens once cluster-wide.
func (s *Store) UpdateKeys(ctx context.Context, fn func(old store.Keys) (store.Keys, error)) error {
	key := s.keysKey()
	return s.do(ctx, "update keys", func(ctx context.Context) error {
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
			var old store.Keys
			cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
			if kv != nil {
				if err := decodeKeys(kv.Value, &old); err != nil {
					return err
				}
				cmp = clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)
			}
			k, err := fn(old)
			if err != nil {
				return &callerError{err}
			}
			r, err := json.Marshal(k)
			if err != nil {
				return invalid("encode keys: %v", err)
			}
			data, _ := json.Marshal(envelope{V: recordVersion, R: r})
			resp, err := within(s, ctx, func(c context.Context) (*clientv3.TxnResponse, error) {
				return s.cli.Txn(c).If(cmp).Then(clientv3.OpPut(key, string(data))).Else(clientv3.OpGet(key)).Commit()
			})
			if transient(err) {
				// Done or not? Our value at a newer revision: done. The
				// revision we read: not done, try again. Else another
				// replica's, as after a lost compare-and-swap.
				cur, rerr := s.getKV(ctx, key)
				switch {
				case rerr != nil:
					return err
				case cur != nil && (kv == nil || cur.ModRevision != kv.ModRevision) && string(cur.Value) == string(data):
					return nil
				case (cur == nil && kv == nil) || (cur != nil && kv != nil && cur.ModRevision == kv.ModRevision):
					if !s.again(ctx, unsure) {
						return err
					}
					unsure++
					continue
				}
				kv = cur
			} else if err != nil {
				return err
			} else if resp.Succeeded {
				return nil
			} else {
				kv = elseKV(resp, 0)
			}
			if err := s.backoff(ctx, attempt); err != nil {
				return err
			}
		}
	})
}

// WatchKeys reports changes of the key set until ctx is done or the store
// is closed, when it closes the channel. A value on the channel means "the
// key set may have changed: read it again"; one is also sent whenever the
// watch had to be re-established (after an outage, or a compaction), since
// a change may have been missed meanwhile. The channel holds at most one
// pending report.
func (s *Store) WatchKeys(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	notify := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	s.wg.Go(func() {
		defer close(ch)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			// Close ends the watch too.
			select {
			case <-ctx.Done():
			case <-s.bg.Done():
				cancel()
			}
		}()
		wait := time.Second
		for first := true; ctx.Err() == nil && !s.closed.Load(); first = false {
			// WithCreatedNotify: the first response says the watch is
			// established; only then can a change missed while it was
			// down be read back, so only then is it reported.
			for resp := range s.cli.Watch(clientv3.WithRequireLeader(ctx), s.keysKey(), clientv3.WithCreatedNotify()) {
				if err := resp.Err(); err != nil {
					s.log.Warn("etcd store: watch of the key set interrupted; re-establishing it", "err", err)
					break
				}
				if resp.Created {
					wait = time.Second
					if !first {
						notify()
					}
					continue
				}
				if len(resp.Events) > 0 {
					notify()
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

// GetOrCreateSecret returns the secret called name, creating it with gen
// when it does not exist. Across replicas, the create is a transaction
// "only if absent": every replica gets the one value that won. Within a
// process, gen runs once.
func (s *Store) GetOrCreateSecret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	if name == "" {
		return nil, errors.New("store/etcd: get secret: empty name")
	}
	key := s.key(kindSecrets, name)
	read := func(ctx context.Context) ([]byte, error) {
		kv, err := s.getKV(ctx, key)
		if err != nil || kv == nil {
			return nil, err
		}
		return decodeSecret(kv.Value)
	}
	var secret []byte
	err := s.do(ctx, "get secret", func(ctx context.Context) error {
		var err error
		secret, err = read(ctx)
		return err
	})
	if err != nil || secret != nil {
		return secret, err
	}
	s.secretMu.Lock()
	defer s.secretMu.Unlock()
	err = s.do(ctx, "create secret", func(ctx context.Context) error {
		var err error
		if secret, err = read(ctx); err != nil || secret != nil {
			return err // another goroutine created it meanwhile
		}
		v, err := gen()
		if err != nil {
			return &callerError{err}
		}
		if len(v) == 0 {
			return invalid("the generator returned no bytes")
		}
		r, _ := json.Marshal(v)
		data, _ := json.Marshal(envelope{V: recordVersion, R: r})
		// Create-if-absent is safe to repeat: if a first attempt did
		// commit, the repeat finds the key and reads back its value.
		var resp *clientv3.TxnResponse
		err = s.repeat(ctx, func() error {
			var err error
			resp, err = within(s, ctx, func(c context.Context) (*clientv3.TxnResponse, error) {
				return s.cli.Txn(c).
					If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
					Then(clientv3.OpPut(key, string(data))).
					Else(clientv3.OpGet(key)).
					Commit()
			})
			return err
		})
		if err != nil {
			return err
		}
		if resp.Succeeded {
			secret = bytes.Clone(v)
			return nil
		}
		// Another replica created it first: its value wins.
		kv := elseKV(resp, 0)
		if kv == nil {
			return invalid("secret %q vanished while being created", name)
		}
		secret, err = decodeSecret(kv.Value)
		return err
	})
	if err != nil {
		return nil, err
	}
	return secret, nil
}

// decodeSecret unwraps a stored secret.
func decodeSecret(raw []byte) ([]byte, error) {
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil || e.V != recordVersion {
		return nil, invalid("decode secret: not a version %d envelope", recordVersion)
	}
	var v []byte
	if err := json.Unmarshal(e.R, &v); err != nil || len(v) == 0 {
		return nil, invalid("decode secret: not a secret")
	}
	return v, nil
}

package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ghbroker/ghbroker/store"
)

// header is the part of every expiring record the store reads itself.
type header struct {
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// readHeader decodes the header of a stored record.
func readHeader(data []byte) (header, error) {
	var h header
	if err := json.Unmarshal(data, &h); err != nil {
		return header{}, fmt.Errorf("decode record: %w", err)
	}
	return h, nil
}

// encode returns v as JSON together with its header.
func encode(v any) ([]byte, header, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, header{}, fmt.Errorf("encode record: %w", err)
	}
	h, err := readHeader(data)
	return data, h, err
}

// callerError carries an error from a caller's closure or generator out of
// a transaction, so that it is returned as it is rather than wrapped.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }

// view runs fn in a read-only transaction.
func (s *Store) view(ctx context.Context, op string, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store/bolt: %s: %w", op, err)
	}
	if err := s.db.View(fn); err != nil {
		return fmt.Errorf("store/bolt: %s: %w", op, err)
	}
	return nil
}

// update runs fn in a read-write transaction, which commits when fn
// returns nil and rolls back otherwise.
func (s *Store) update(ctx context.Context, op string, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store/bolt: %s: %w", op, err)
	}
	err := s.db.Update(fn)
	if ce, ok := errors.AsType[*callerError](err); ok {
		return ce.err
	}
	if err != nil {
		return fmt.Errorf("store/bolt: %s: %w", op, err)
	}
	return nil
}

// live returns the record stored under id in b if it has not expired at
// now; store.ErrNotFound otherwise. The bytes are valid only inside the
// transaction.
func live(b *bbolt.Bucket, id string, now time.Time) ([]byte, error) {
	data := b.Get([]byte(id))
	if data == nil {
		return nil, store.ErrNotFound
	}
	h, err := readHeader(data)
	if err != nil {
		return nil, err
	}
	if h.Expires.Before(now) {
		return nil, store.ErrNotFound
	}
	return data, nil
}

// create stores v, a record for bucket, unless a live record has its id.
func create(ctx context.Context, s *Store, bucket []byte, v any) error {
	op := "create in " + string(bucket)
	data, h, err := encode(v)
	if err != nil {
		return fmt.Errorf("store/bolt: %s: %w", op, err)
	}
	if h.ID == "" {
		return fmt.Errorf("store/bolt: %s: empty id", op)
	}
	now := s.now()
	return s.update(ctx, op, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		switch _, err := live(b, h.ID, now); {
		case err == nil:
			return store.ErrAlreadyExists
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		return b.Put([]byte(h.ID), data)
	})
}

// get returns the live record id from bucket, decoded (and so copied out of
// the transaction). With take it deletes the record in the same
// transaction.
func get[T any](ctx context.Context, s *Store, bucket []byte, id string, take bool) (T, error) {
	var v T
	now := s.now()
	read := func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		data, err := live(b, id, now)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("decode record: %w", err)
		}
		if take {
			return b.Delete([]byte(id))
		}
		return nil
	}
	var err error
	if take {
		err = s.update(ctx, "take from "+string(bucket), read)
	} else {
		err = s.view(ctx, "get from "+string(bucket), read)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// update runs fn on the live record id from bucket and stores its result,
// in one transaction. An error from fn is returned as it is.
func update[T any](ctx context.Context, s *Store, bucket []byte, id string, fn func(T) (T, error)) error {
	now := s.now()
	return s.update(ctx, "update in "+string(bucket), func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		data, err := live(b, id, now)
		if err != nil {
			return err
		}
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("decode record: %w", err)
		}
		if v, err = fn(v); err != nil {
			return &callerError{err}
		}
		data, h, err := encode(v)
		if err != nil {
			return err
		}
		if h.ID != id {
			return errors.New("the update changed the record's id")
		}
		return b.Put([]byte(id), data)
	})
}

// remove deletes the live record id from bucket.
func remove(ctx context.Context, s *Store, bucket []byte, id string) error {
	now := s.now()
	return s.update(ctx, "delete from "+string(bucket), func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		if _, err := live(b, id, now); err != nil {
			return err
		}
		return b.Delete([]byte(id))
	})
}

// GetKeys returns the key set, or store.ErrNotFound before the first update.
func (s *Store) GetKeys(ctx context.Context) (store.Keys, error) {
	var k store.Keys
	err := s.view(ctx, "get keys", func(tx *bbolt.Tx) error {
		data := tx.Bucket(bucketKeys).Get(keyKeys)
		if data == nil {
			return store.ErrNotFound
		}
		return json.Unmarshal(data, &k)
	})
	if err != nil {
		return store.Keys{}, err
	}
	return k, nil
}

// UpdateKeys runs fn on the key set (the zero Keys when there is none) and
// stores its result, in one transaction. An error from fn is returned as
// it is. fn must not call the store.
func (s *Store) UpdateKeys(ctx context.Context, fn func(old store.Keys) (store.Keys, error)) error {
	return s.update(ctx, "update keys", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		var k store.Keys
		if data := b.Get(keyKeys); data != nil {
			if err := json.Unmarshal(data, &k); err != nil {
				return fmt.Errorf("decode keys: %w", err)
			}
		}
		k, err := fn(k)
		if err != nil {
			return &callerError{err}
		}
		data, err := json.Marshal(k)
		if err != nil {
			return fmt.Errorf("encode keys: %w", err)
		}
		return b.Put(keyKeys, data)
	})
}

// GetOrCreateSecret returns the secret called name, creating it with gen
// when it does not exist. gen runs inside the write transaction, so
// concurrent callers all get the one secret it made; it must not call the
// store.
func (s *Store) GetOrCreateSecret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	if name == "" {
		return nil, errors.New("store/bolt: get secret: empty name")
	}
	var secret []byte
	err := s.view(ctx, "get secret", func(tx *bbolt.Tx) error {
		secret = bytes.Clone(tx.Bucket(bucketSecrets).Get([]byte(name)))
		return nil
	})
	if err != nil || secret != nil {
		return secret, err
	}
	err = s.update(ctx, "create secret", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSecrets)
		if secret = bytes.Clone(b.Get([]byte(name))); secret != nil {
			return nil // another caller created it meanwhile
		}
		v, err := gen()
		if err != nil {
			return &callerError{err}
		}
		if len(v) == 0 {
			return errors.New("the generator returned no bytes")
		}
		secret = bytes.Clone(v)
		return b.Put([]byte(name), bytes.Clone(v))
	})
	if err != nil {
		return nil, err
	}
	return secret, nil
}

// CreateSession stores a new session; store.ErrAlreadyExists when a live
// one has its ID.
func (s *Store) CreateSession(ctx context.Context, v store.Session) error {
	return create(ctx, s, bucketSessions, v)
}

// GetSession returns the live session id.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	return get[store.Session](ctx, s, bucketSessions, id, false)
}

// UpdateSession runs fn on the live session id and stores its result, in
// one transaction. fn must not call the store.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(store.Session) (store.Session, error)) error {
	return update(ctx, s, bucketSessions, id, fn)
}

// DeleteSession deletes the live session id.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return remove(ctx, s, bucketSessions, id)
}

// ListSessions returns every live session.
func (s *Store) ListSessions(ctx context.Context) ([]store.Session, error) {
	return list[store.Session](ctx, s, bucketSessions)
}

// AddRevocation stores a revocation entry.
func (s *Store) AddRevocation(ctx context.Context, r store.Revocation) error {
	return create(ctx, s, bucketRevocations, r)
}

// Revocations returns every live revocation entry.
func (s *Store) Revocations(ctx context.Context) ([]store.Revocation, error) {
	return list[store.Revocation](ctx, s, bucketRevocations)
}

// list returns every live record of bucket.
func list[T any](ctx context.Context, s *Store, bucket []byte) ([]T, error) {
	now := s.now()
	var out []T
	err := s.view(ctx, "list "+string(bucket), func(tx *bbolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, _ []byte) error {
			data, err := live(tx.Bucket(bucket), string(k), now)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			var v T
			if err := json.Unmarshal(data, &v); err != nil {
				return err
			}
			out = append(out, v)
			return nil
		})
	})
	return out, err
}

// FirstDelivery records a webhook delivery id and reports whether it was
// new.
func (s *Store) FirstDelivery(ctx context.Context, id string, expires time.Time) (bool, error) {
	err := create(ctx, s, bucketDeliveries, store.Delivery{ID: id, Expires: expires})
	if errors.Is(err, store.ErrAlreadyExists) {
		return false, nil
	}
	return err == nil, err
}

// CreateAuthCode stores a new authorization code.
func (s *Store) CreateAuthCode(ctx context.Context, v store.AuthCode) error {
	return create(ctx, s, bucketCodes, v)
}

// UpdateAuthCode runs fn on the live code id and stores its result, in one
// transaction. fn must not call the store.
func (s *Store) UpdateAuthCode(ctx context.Context, id string, fn func(store.AuthCode) (store.AuthCode, error)) error {
	return update(ctx, s, bucketCodes, id, fn)
}

// CreateRefreshFamily stores a new refresh family.
func (s *Store) CreateRefreshFamily(ctx context.Context, v store.RefreshFamily) error {
	return create(ctx, s, bucketFamilies, v)
}

// GetRefreshFamily returns the live refresh family id.
func (s *Store) GetRefreshFamily(ctx context.Context, id string) (store.RefreshFamily, error) {
	return get[store.RefreshFamily](ctx, s, bucketFamilies, id, false)
}

// UpdateRefreshFamily runs fn on the live refresh family id and stores its
// result, in one transaction. fn must not call the store.
func (s *Store) UpdateRefreshFamily(ctx context.Context, id string, fn func(store.RefreshFamily) (store.RefreshFamily, error)) error {
	return update(ctx, s, bucketFamilies, id, fn)
}

// DeleteRefreshFamily deletes the live refresh family id.
func (s *Store) DeleteRefreshFamily(ctx context.Context, id string) error {
	return remove(ctx, s, bucketFamilies, id)
}

// Package memory is an in-memory store.Store for unit tests.
//
// It owns nothing but maps behind one mutex: records live as JSON, exactly
// as the bolt engine keeps them, so every value going in or out is a deep
// copy and a record type that does not survive encoding fails here too. It
// does not persist anything and is not meant for production.
//
// Update closures and secret generators run under the mutex: they must not
// call the store.
package memory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ghbroker/ghbroker/store"
)

var _ store.Store = (*Store)(nil)

// errClosed is returned by every call after Close.
var errClosed = errors.New("store/memory: store is closed")

// Options configures a Store.
type Options struct {
	// Now is the clock that decides whether a record has expired; nil
	// means time.Now.
	Now func() time.Time
}

// Store is an in-memory store.Store. The zero value is not usable; call
// New.
type Store struct {
	now func() time.Time

	mu     sync.Mutex
	closed bool
	keys   []byte            // the key set as JSON; nil before the first update
	secret map[string][]byte // secret name → bytes
	tables map[table]map[string]row
}

// table names one kind of expiring record.
type table string

const (
	sessions      table = "session"
	authCodes     table = "auth code"
	refreshFamily table = "refresh family"
	deviceCodes   table = "device code"
	deliveries    table = "delivery"
	revocations   table = "revocation"
	counters      table = "counter"
	// userCodes indexes deviceCodes: its id is the user code, and its data
	// the device code's id.
	userCodes table = "user code"
)

// row is one stored record: its JSON and, for Sweep, its expiry.
type row struct {
	data    []byte
	expires time.Time
}

// header is the part of every expiring record the store reads itself.
type header struct {
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// New returns an empty store.
func New(opts Options) *Store {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Store{
		now:    now,
		secret: map[string][]byte{},
		tables: map[table]map[string]row{
			sessions: {}, deliveries: {}, revocations: {}, counters: {}, authCodes: {}, refreshFamily: {},
			deviceCodes: {}, userCodes: {},
		},
	}
}

// lock takes the store's mutex unless ctx is done or the store is closed.
// On success the caller must call s.mu.Unlock.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store/memory: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	return nil
}

// encode returns v as JSON together with its id and expiry.
func encode(t table, v any) ([]byte, header, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, header{}, fmt.Errorf("store/memory: encode %s: %w", t, err)
	}
	var h header
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, header{}, fmt.Errorf("store/memory: encode %s: %w", t, err)
	}
	return data, h, nil
}

// live returns the row of record id in table t if it has not expired.
func (s *Store) live(t table, id string) (row, bool) {
	r, ok := s.tables[t][id]
	if !ok || r.expires.Before(s.now()) {
		return row{}, false
	}
	return r, true
}

// create stores v, a record of table t, unless a live one has its id.
func create(ctx context.Context, s *Store, t table, v any) error {
	data, h, err := encode(t, v)
	if err != nil {
		return err
	}
	if h.ID == "" {
		return fmt.Errorf("store/memory: create %s: empty id", t)
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.live(t, h.ID); ok {
		return fmt.Errorf("store/memory: create %s: %w", t, store.ErrAlreadyExists)
	}
	s.tables[t][h.ID] = row{data: data, expires: h.Expires}
	return nil
}

// get returns the live record id of table t. With take it also deletes it.
func get[T any](ctx context.Context, s *Store, t table, id string, take bool) (T, error) {
	var v T
	if err := s.lock(ctx); err != nil {
		return v, err
	}
	defer s.mu.Unlock()
	r, ok := s.live(t, id)
	if take {
		delete(s.tables[t], id)
	}
	if !ok {
		return v, fmt.Errorf("store/memory: get %s: %w", t, store.ErrNotFound)
	}
	if err := json.Unmarshal(r.data, &v); err != nil {
		return v, fmt.Errorf("store/memory: decode %s: %w", t, err)
	}
	return v, nil
}

// update runs fn on the live record id of table t and stores its result.
// An error from fn is returned as it is, and nothing changes.
func update[T any](ctx context.Context, s *Store, t table, id string, fn func(T) (T, error)) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	r, ok := s.live(t, id)
	if !ok {
		return fmt.Errorf("store/memory: update %s: %w", t, store.ErrNotFound)
	}
	var v T
	if err := json.Unmarshal(r.data, &v); err != nil {
		return fmt.Errorf("store/memory: decode %s: %w", t, err)
	}
	v, err := fn(v)
	if err != nil {
		return err
	}
	data, h, err := encode(t, v)
	if err != nil {
		return err
	}
	if h.ID != id {
		return fmt.Errorf("store/memory: update %s: the update changed the id", t)
	}
	s.tables[t][id] = row{data: data, expires: h.Expires}
	return nil
}

// remove deletes the record id of table t; ErrNotFound unless it was live.
func remove(ctx context.Context, s *Store, t table, id string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	_, ok := s.live(t, id)
	delete(s.tables[t], id)
	if !ok {
		return fmt.Errorf("store/memory: delete %s: %w", t, store.ErrNotFound)
	}
	return nil
}

// GetKeys returns the key set, or store.ErrNotFound before the first update.
func (s *Store) GetKeys(ctx context.Context) (store.Keys, error) {
	var k store.Keys
	if err := s.lock(ctx); err != nil {
		return k, err
	}
	defer s.mu.Unlock()
	if s.keys == nil {
		return k, fmt.Errorf("store/memory: get keys: %w", store.ErrNotFound)
	}
	if err := json.Unmarshal(s.keys, &k); err != nil {
		return store.Keys{}, fmt.Errorf("store/memory: decode keys: %w", err)
	}
	return k, nil
}

// UpdateKeys runs fn on the key set (the zero Keys when there is none) and
// stores its result. An error from fn is returned as it is.
func (s *Store) UpdateKeys(ctx context.Context, fn func(old store.Keys) (store.Keys, error)) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	var k store.Keys
	if s.keys != nil {
		if err := json.Unmarshal(s.keys, &k); err != nil {
			return fmt.Errorf("store/memory: decode keys: %w", err)
		}
	}
	k, err := fn(k)
	if err != nil {
		return err
	}
	data, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("store/memory: encode keys: %w", err)
	}
	s.keys = data
	return nil
}

// GetOrCreateSecret returns the secret called name, creating it with gen
// when it does not exist. gen runs under the store's lock, so concurrent
// callers all get the one secret it made.
func (s *Store) GetOrCreateSecret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	if name == "" {
		return nil, errors.New("store/memory: secret: empty name")
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if b, ok := s.secret[name]; ok {
		return bytes.Clone(b), nil
	}
	b, err := gen()
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("store/memory: secret %q: generator returned no bytes", name)
	}
	s.secret[name] = bytes.Clone(b)
	return bytes.Clone(b), nil
}

// CreateSession stores a new session; store.ErrAlreadyExists when a live
// one has its ID.
func (s *Store) CreateSession(ctx context.Context, v store.Session) error {
	return create(ctx, s, sessions, v)
}

// GetSession returns the live session id.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	return get[store.Session](ctx, s, sessions, id, false)
}

// UpdateSession runs fn on the live session id and stores its result.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(store.Session) (store.Session, error)) error {
	return update(ctx, s, sessions, id, fn)
}

// DeleteSession deletes the session id.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return remove(ctx, s, sessions, id)
}

// ListSessions returns every live session.
func (s *Store) ListSessions(ctx context.Context) ([]store.Session, error) {
	return list[store.Session](ctx, s, sessions)
}

// list returns every live record of table t.
func list[T any](ctx context.Context, s *Store, t table) ([]T, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []T
	for id := range s.tables[t] {
		r, ok := s.live(t, id)
		if !ok {
			continue
		}
		var v T
		if err := json.Unmarshal(r.data, &v); err != nil {
			return nil, fmt.Errorf("store/memory: list %s: %w", t, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// AddRevocation stores a revocation entry.
func (s *Store) AddRevocation(ctx context.Context, r store.Revocation) error {
	return create(ctx, s, revocations, r)
}

// Revocations returns every live revocation entry.
func (s *Store) Revocations(ctx context.Context) ([]store.Revocation, error) {
	return list[store.Revocation](ctx, s, revocations)
}

// FirstDelivery records a webhook delivery id and reports whether it was
// new.
func (s *Store) FirstDelivery(ctx context.Context, id string, expires time.Time) (bool, error) {
	err := create(ctx, s, deliveries, store.Delivery{ID: id, Expires: expires})
	if errors.Is(err, store.ErrAlreadyExists) {
		return false, nil
	}
	return err == nil, err
}

// CreateAuthCode stores a new authorization code.
func (s *Store) CreateAuthCode(ctx context.Context, v store.AuthCode) error {
	return create(ctx, s, authCodes, v)
}

// UpdateAuthCode runs fn on the live code id and stores its result.
func (s *Store) UpdateAuthCode(ctx context.Context, id string, fn func(store.AuthCode) (store.AuthCode, error)) error {
	return update(ctx, s, authCodes, id, fn)
}

// CreateRefreshFamily stores a new refresh family.
func (s *Store) CreateRefreshFamily(ctx context.Context, v store.RefreshFamily) error {
	return create(ctx, s, refreshFamily, v)
}

// GetRefreshFamily returns the live refresh family id.
func (s *Store) GetRefreshFamily(ctx context.Context, id string) (store.RefreshFamily, error) {
	return get[store.RefreshFamily](ctx, s, refreshFamily, id, false)
}

// UpdateRefreshFamily runs fn on the live refresh family id and stores its
// result.
func (s *Store) UpdateRefreshFamily(ctx context.Context, id string, fn func(store.RefreshFamily) (store.RefreshFamily, error)) error {
	return update(ctx, s, refreshFamily, id, fn)
}

// DeleteRefreshFamily deletes the refresh family id.
func (s *Store) DeleteRefreshFamily(ctx context.Context, id string) error {
	return remove(ctx, s, refreshFamily, id)
}

// Sweep deletes every record that expired before now and reports how many
// it deleted. Keys and secrets never expire.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	n := 0
	for t, rows := range s.tables {
		for id, r := range rows {
			if r.expires.Before(now) {
				delete(rows, id)
				if t != userCodes { // an index entry is not a record
					n++
				}
			}
		}
	}
	return n, nil
}

// Close drops every record. Every later call fails.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.keys, s.secret, s.tables = nil, nil, nil
	return nil
}

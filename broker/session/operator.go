package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ghbroker/ghbroker/revocation"
	"github.com/ghbroker/ghbroker/store"
)

// What operators do with `ghbroker sessions`: on a running broker (bbolt,
// through the admin socket) with the Manager, and on a store directly
// (etcd, or a bbolt file no server holds) with RevokeInStore.

// Select returns the live sessions of login (case-insensitive; every
// session when login is ""), or the one session id, newest first.
func Select(ctx context.Context, st store.SessionLister, login, id string) ([]store.Session, error) {
	all, err := st.ListSessions(ctx)
	if err != nil {
		return nil, fmt.Errorf("session: list: %w", err)
	}
	out := slices.DeleteFunc(all, func(s store.Session) bool {
		return (id != "" && s.ID != id) || (login != "" && !strings.EqualFold(s.Login, login))
	})
	slices.SortFunc(out, func(a, b store.Session) int { return b.AuthTime.Compare(a.AuthTime) })
	return out, nil
}

// Sessions lists the live sessions of login ("" for all).
func (m *Manager) Sessions(ctx context.Context, login string) ([]store.Session, error) {
	return Select(ctx, m.store, login, "")
}

// Revoke ends, everywhere, the sessions of login or the session id (one of
// them must be set): their tokens are refused at every check, their
// refresh tokens stop working, relying parties are told (back-channel
// logout), and for a login every token of the person issued before now is
// refused too. It returns how many sessions ended.
func (m *Manager) Revoke(ctx context.Context, login, id string) (int, error) {
	if (login == "") == (id == "") {
		return 0, errors.New("session: name a user or a session")
	}
	ss, err := Select(ctx, m.store, login, id)
	if err != nil {
		return 0, err
	}
	subjects := map[string]bool{}
	for _, s := range ss {
		m.End(ctx, s.ID, "operator")
		subjects[s.Subject] = true
	}
	if id != "" && len(ss) == 0 {
		m.End(ctx, id, "operator") // not in the store (any more): its tokens are refused all the same
	}
	if login != "" {
		for sub := range subjects {
			m.RevokeSubject(sub, "operator")
		}
	}
	return len(ss), nil
}

// DirectStore is a store an operator's command writes to itself.
type DirectStore interface {
	store.SessionStore
	store.SessionLister
	store.RevocationStore
}

// RevokeInStore is Revoke for a store no Manager of this process holds:
// it deletes the sessions and records the revocations in the store, where
// running replicas find them (etcd: through their watch; bbolt: when the
// server next starts). Relying parties are not told (no back-channel
// logout without a running broker).
func RevokeInStore(ctx context.Context, st DirectStore, login, id string, maxTokenLife time.Duration, now time.Time) (int, error) {
	if (login == "") == (id == "") {
		return 0, errors.New("session: name a user or a session")
	}
	ss, err := Select(ctx, st, login, id)
	if err != nil {
		return 0, err
	}
	exp := now.Add(maxTokenLife)
	add := func(r store.Revocation) error {
		r.ID, r.Source, r.Expires = rand.Text(), "operator", exp
		return st.AddRevocation(ctx, r)
	}
	ids := []string{id}
	if id == "" {
		ids = nil
	}
	subjects := map[string]bool{}
	for _, s := range ss {
		if !slices.Contains(ids, s.ID) {
			ids = append(ids, s.ID)
		}
		subjects[s.Subject] = true
	}
	var errs []error
	for _, sid := range ids {
		if err := add(store.Revocation{Session: sid}); err != nil {
			errs = append(errs, err)
		}
		if err := st.DeleteSession(ctx, sid); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	if login != "" {
		for sub := range subjects {
			if err := add(store.Revocation{Subject: sub, Before: revocation.Millis(now)}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return len(ss), errors.Join(errs...)
}

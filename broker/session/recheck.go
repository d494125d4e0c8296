package session

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Recheck re-reads GitHub for every live session whose memberships were
// last read more than every ago, and revokes the tokens of a person whose
// groups changed (silent renewal then mints the current ones) or who is in
// no allowed org any more (Reread also ends their session). It bounds how
// stale a token can be where nobody can install a webhook. pace, when
// positive, is waited between two sessions, spreading the GitHub calls.
// It returns how many sessions changed.
func (m *Manager) Recheck(ctx context.Context, every, pace time.Duration) (int, error) {
	all, err := m.store.ListSessions(ctx)
	if err != nil {
		return 0, err
	}
	now := m.now()
	changed := 0
	var errs []error
	for i, s := range all {
		if now.Sub(s.Renewed) < every {
			continue
		}
		if i > 0 && pace > 0 {
			select {
			case <-ctx.Done():
				return changed, ctx.Err()
			case <-time.After(pace):
			}
		}
		fresh, err := m.Reread(ctx, s)
		var na *NotAdmittedError
		switch {
		case errors.As(err, &na), errors.Is(err, ErrGitHubToken):
			changed++ // ended, and revoked, by Reread
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		}
		if !sameGroups(s.Groups, fresh.Groups) {
			changed++
			m.RevokeSubject(s.Subject, "recheck")
			m.log.Info("memberships changed on GitHub: tokens issued before are refused", "login", s.Login)
		}
	}
	return changed, errors.Join(errs...)
}

// RunRecheck calls Recheck twice a period until ctx ends, spreading each
// pass's GitHub calls, so that no session goes unread for much more than
// the period.
func (m *Manager) RunRecheck(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := 1
		if l, err := m.store.ListSessions(ctx); err == nil && len(l) > 0 {
			n = len(l)
		}
		pace := min(every/time.Duration(4*n), time.Second)
		if _, err := m.Recheck(ctx, every, pace); err != nil && ctx.Err() == nil {
			m.log.Warn("re-reading memberships failed for some sessions", "err", err)
		}
	}
}

func sameGroups(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

package keys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ghbroker/ghbroker/store"
)

// retireLeeway is added to MaxTokenLifetime before a retired key leaves the
// published set, to cover clock skew between the broker and verifiers.
const retireLeeway = time.Minute

// errNothingToDo aborts an update transaction that found nothing to change.
var errNothingToDo = errors.New("keys: nothing to do")

// Rotate is the synchronous rotation step. It creates the first key set in
// an empty store, promotes next to current when the rotation is due (or
// when force is set), replaces a next key whose algorithm no longer matches
// the configured one, and drops previous keys that can no longer verify a
// live token. It reports whether the key set changed, and always reloads
// the in-memory view from the store.
//
// Keys are generated before the store transaction, so that the writer lock
// is never held across key generation; the transaction re-checks that the
// work is still due, so concurrent rotations by several processes are safe.
func (m *Manager) Rotate(ctx context.Context, force bool) (bool, error) {
	now := m.opts.Now()
	old, err := m.ks.GetKeys(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("keys: rotate: %w", err)
	}
	if !force && !m.due(old, now) {
		return false, m.install(old)
	}
	// A new next key, and a current one too for an empty store.
	n := 1
	if old.Current == nil {
		n = 2
	}
	var fresh []*store.SigningKey
	for range n {
		k, err := newSigningKey(m.opts.Algorithm, m.opts.Generate, now)
		if err != nil {
			return false, err
		}
		fresh = append(fresh, k)
	}
	var result store.Keys
	err = m.ks.UpdateKeys(ctx, func(k store.Keys) (store.Keys, error) {
		if !force && !m.due(k, now) {
			result = k
			return k, errNothingToDo
		}
		if k.Current == nil && len(fresh) < 2 {
			return k, errors.New("keys: key set removed during rotation; try again")
		}
		result = m.rotated(k, fresh, now, force)
		return result, nil
	})
	if errors.Is(err, errNothingToDo) {
		return false, m.install(result)
	}
	if err != nil {
		return false, fmt.Errorf("keys: rotate: %w", err)
	}
	m.opts.Logger.Info("signing keys rotated", "current", result.Current.KID, "next", result.Next.KID,
		"previous", len(result.Previous), "next_rotation", result.NextRotation)
	return true, m.install(result)
}

// due reports whether k needs any change at now.
func (m *Manager) due(k store.Keys, now time.Time) bool {
	if k.Current == nil || k.Next == nil || !now.Before(k.NextRotation) {
		return true
	}
	if k.Next.Algorithm != m.opts.Algorithm {
		return true
	}
	for _, p := range k.Previous {
		if !now.Before(p.Expires) {
			return true
		}
	}
	return false
}

// rotated computes the new key set from k. The last of fresh is the new
// next key; the first is the new current key when k is empty.
func (m *Manager) rotated(k store.Keys, fresh []*store.SigningKey, now time.Time, force bool) store.Keys {
	out := store.Keys{Current: k.Current, Next: k.Next, NextRotation: k.NextRotation}
	out.Previous = slices.DeleteFunc(slices.Clone(k.Previous), func(p store.SigningKey) bool {
		return !now.Before(p.Expires)
	})
	switch {
	case out.Current == nil:
		// An empty store: the first key signs at once.
		out.Current, out.Next = fresh[0], fresh[len(fresh)-1]
		out.NextRotation = now.Add(m.opts.RotateEvery)
	case out.Next == nil:
		out.Next = fresh[len(fresh)-1]
		out.NextRotation = now.Add(m.opts.RotateEvery)
	case force || !now.Before(out.NextRotation):
		retired := *out.Current
		retired.Expires = now.Add(m.opts.MaxTokenLifetime + retireLeeway)
		out.Previous = append(out.Previous, retired)
		out.Current, out.Next = out.Next, fresh[len(fresh)-1]
		out.NextRotation = now.Add(m.opts.RotateEvery)
	}
	if out.Next.Algorithm != m.opts.Algorithm {
		// The next key has never signed: replace it with one of the
		// configured algorithm; the current key keeps signing until the
		// scheduled rotation.
		out.Next = fresh[len(fresh)-1]
	}
	return out
}

// KeyWatcher is a key store that reports changes of the key set as they
// happen (store/etcd, through an etcd watch). A Manager on such a store
// reloads within moments of another replica's rotation instead of at its
// next tick.
type KeyWatcher interface {
	// WatchKeys sends on the returned channel whenever the key set may
	// have changed, and closes it once ctx is done.
	WatchKeys(ctx context.Context) <-chan struct{}
}

// Run rotates when due and reloads the key set (to pick up rotations by
// other processes) every interval, until ctx is done; when the store is a
// KeyWatcher it also reloads at every change it reports. Errors are logged
// and retried at the next tick: the last good keys keep signing meanwhile.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var changes <-chan struct{}
	if w, ok := m.ks.(KeyWatcher); ok {
		changes = w.WatchKeys(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			if err := m.Reload(ctx); err != nil && ctx.Err() == nil {
				m.opts.Logger.Error("reloading the key set after a change failed; keeping the current keys", "err", err)
			}
		case <-t.C:
			if _, err := m.Rotate(ctx, false); err != nil && ctx.Err() == nil {
				m.opts.Logger.Error("key rotation failed; keeping the current keys", "err", err)
			}
		}
	}
}

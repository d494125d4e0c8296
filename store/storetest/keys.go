package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/store"
)

// fullKeys returns a key set with every field set, including a previous key
// that expired long before start: keys never expire in the store.
func fullKeys() store.Keys {
	return store.Keys{
		Current: &store.SigningKey{
			KID: "kid-current", Algorithm: "ES256",
			PrivateJWK: []byte(`{"kty":"EC","crv":"P-256"}`),
			Created:    start.Add(-24 * time.Hour),
		},
		Next: &store.SigningKey{
			KID: "kid-next", Algorithm: "ES256",
			PrivateJWK: []byte(`{"kty":"EC","crv":"P-256","n":1}`),
			Created:    start,
		},
		Previous: []store.SigningKey{{
			KID: "kid-previous", Algorithm: "RS256",
			PrivateJWK: []byte(`{"kty":"RSA"}`),
			Created:    start.Add(-48 * time.Hour),
			Expires:    start.Add(-time.Hour),
		}},
		NextRotation: start.Add(24 * time.Hour),
	}
}

// setKeys stores k as the key set.
func setKeys(t *testing.T, st store.Store, k store.Keys) {
	t.Helper()
	if err := st.UpdateKeys(t.Context(), func(store.Keys) (store.Keys, error) { return k, nil }); err != nil {
		t.Fatalf("UpdateKeys: %v", err)
	}
}

// wantKeys checks the stored key set.
func wantKeys(t *testing.T, st store.Store, want store.Keys) {
	t.Helper()
	got, err := st.GetKeys(t.Context())
	if err != nil {
		t.Fatalf("GetKeys: %v", err)
	}
	diff(t, "GetKeys", want, got)
}

func (s *suite) testKeys(t *testing.T) {
	t.Run("NotFoundBeforeUpdate", func(t *testing.T) {
		st, _ := s.newStore(t)
		if _, err := st.GetKeys(t.Context()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetKeys on an empty store = %v, want ErrNotFound", err)
		}
	})
	t.Run("Update", func(t *testing.T) {
		st, _ := s.newStore(t)
		err := st.UpdateKeys(t.Context(), func(old store.Keys) (store.Keys, error) {
			diff(t, "UpdateKeys closure argument on an empty store", store.Keys{}, old)
			return fullKeys(), nil
		})
		if err != nil {
			t.Fatalf("UpdateKeys: %v", err)
		}
		wantKeys(t, st, fullKeys())
		rotated := fullKeys()
		rotated.Previous = append(rotated.Previous, *rotated.Current)
		rotated.Current, rotated.Next = rotated.Next, nil
		err = st.UpdateKeys(t.Context(), func(old store.Keys) (store.Keys, error) {
			diff(t, "UpdateKeys closure argument", fullKeys(), old)
			return rotated, nil
		})
		if err != nil {
			t.Fatalf("second UpdateKeys: %v", err)
		}
		wantKeys(t, st, rotated)
	})
	t.Run("UpdateError", func(t *testing.T) {
		st, _ := s.newStore(t)
		fail := func(store.Keys) (store.Keys, error) { return fullKeys(), errBoom }
		if err := st.UpdateKeys(t.Context(), fail); !errors.Is(err, errBoom) {
			t.Errorf("failing UpdateKeys on an empty store = %v, want the closure's error", err)
		}
		if _, err := st.GetKeys(t.Context()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetKeys after a failed first update = %v, want ErrNotFound", err)
		}
		setKeys(t, st, fullKeys())
		fail = func(store.Keys) (store.Keys, error) { return store.Keys{}, errBoom }
		if err := st.UpdateKeys(t.Context(), fail); !errors.Is(err, errBoom) {
			t.Errorf("failing UpdateKeys = %v, want the closure's error", err)
		}
		wantKeys(t, st, fullKeys())
	})
	t.Run("Copies", func(t *testing.T) {
		st, _ := s.newStore(t)
		in := fullKeys()
		setKeys(t, st, in)
		mutate := func(k store.Keys) {
			k.Current.KID, k.Current.PrivateJWK[0] = "changed", 'X'
			k.Next.KID = "changed"
			k.Previous[0].KID, k.Previous[0].PrivateJWK[0] = "changed", 'X'
		}
		mutate(in)
		out, err := st.GetKeys(t.Context())
		if err != nil {
			t.Fatalf("GetKeys: %v", err)
		}
		mutate(out)
		err = st.UpdateKeys(t.Context(), func(old store.Keys) (store.Keys, error) {
			mutate(old)
			return old, errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("UpdateKeys = %v, want the closure's error", err)
		}
		wantKeys(t, st, fullKeys())
	})
	t.Run("NeverExpire", func(t *testing.T) {
		st, clk := s.newStore(t)
		setKeys(t, st, fullKeys())
		clk.Advance(100 * 365 * 24 * time.Hour)
		wantKeys(t, st, fullKeys())
	})
	t.Run("ConcurrentUpdates", func(t *testing.T) {
		st, _ := s.newStore(t)
		var wg sync.WaitGroup
		for i := range goroutines {
			wg.Go(func() {
				err := st.UpdateKeys(t.Context(), func(k store.Keys) (store.Keys, error) {
					k.Previous = append(k.Previous, store.SigningKey{KID: fmt.Sprint(i)})
					return k, nil
				})
				if err != nil {
					t.Errorf("UpdateKeys: %v", err)
				}
			})
		}
		wg.Wait()
		got, err := st.GetKeys(t.Context())
		if err != nil {
			t.Fatalf("GetKeys: %v", err)
		}
		seen := map[string]bool{}
		for _, k := range got.Previous {
			seen[k.KID] = true
		}
		if len(got.Previous) != goroutines || len(seen) != goroutines {
			t.Errorf("after %d concurrent updates: %d previous keys, %d distinct; want %d of each",
				goroutines, len(got.Previous), len(seen), goroutines)
		}
	})
}

// counter is a secret generator that counts its calls.
type counter struct {
	calls atomic.Int32
	value []byte
}

// gen returns a fresh copy of the counter's value.
func (c *counter) gen() ([]byte, error) {
	c.calls.Add(1)
	return bytes.Clone(c.value), nil
}

func (s *suite) testSecret(t *testing.T) {
	t.Run("CreateOnce", func(t *testing.T) {
		st, clk := s.newStore(t)
		g := &counter{value: []byte{0, 1, 2, 0xff}}
		for i := range 3 {
			got, err := st.GetOrCreateSecret(t.Context(), "cookie", g.gen)
			if err != nil {
				t.Fatalf("GetOrCreateSecret #%d: %v", i, err)
			}
			diff(t, "secret", g.value, got)
			clk.Advance(100 * 365 * 24 * time.Hour) // secrets never expire
		}
		if n := g.calls.Load(); n != 1 {
			t.Errorf("generator called %d times, want 1", n)
		}
	})
	t.Run("Names", func(t *testing.T) {
		st, _ := s.newStore(t)
		for _, name := range []string{"cookie", "token-seal", "a/b c"} {
			got, err := st.GetOrCreateSecret(t.Context(), name, (&counter{value: []byte(name)}).gen)
			if err != nil {
				t.Fatalf("GetOrCreateSecret(%q): %v", name, err)
			}
			diff(t, "secret "+name, []byte(name), got)
		}
	})
	t.Run("GenError", func(t *testing.T) {
		st, _ := s.newStore(t)
		_, err := st.GetOrCreateSecret(t.Context(), "cookie", func() ([]byte, error) { return []byte("x"), errBoom })
		if !errors.Is(err, errBoom) {
			t.Errorf("GetOrCreateSecret with a failing generator = %v, want its error", err)
		}
		g := &counter{value: []byte("secret")}
		got, err := st.GetOrCreateSecret(t.Context(), "cookie", g.gen)
		if err != nil || !bytes.Equal(got, g.value) || g.calls.Load() != 1 {
			t.Errorf("GetOrCreateSecret after a failed one = %q, %v (%d generator calls); want %q, nil (1 call)",
				got, err, g.calls.Load(), g.value)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		st, _ := s.newStore(t)
		if _, err := st.GetOrCreateSecret(t.Context(), "", (&counter{value: []byte("x")}).gen); err == nil {
			t.Error("GetOrCreateSecret with an empty name succeeded, want an error")
		}
		if _, err := st.GetOrCreateSecret(t.Context(), "cookie", (&counter{}).gen); err == nil {
			t.Error("GetOrCreateSecret with a generator returning no bytes succeeded, want an error")
		}
	})
	t.Run("Copies", func(t *testing.T) {
		st, _ := s.newStore(t)
		in := []byte("secret")
		got, err := st.GetOrCreateSecret(t.Context(), "cookie", func() ([]byte, error) { return in, nil })
		if err != nil {
			t.Fatalf("GetOrCreateSecret: %v", err)
		}
		in[0], got[1] = 'X', 'X'
		other := (&counter{value: []byte("other")}).gen
		// The first call created the secret, the second reads it back.
		for i := range 2 {
			got, err = st.GetOrCreateSecret(t.Context(), "cookie", other)
			if err != nil {
				t.Fatalf("GetOrCreateSecret #%d: %v", i+2, err)
			}
			diff(t, "stored secret after mutating copies", []byte("secret"), got)
			got[2] = 'X'
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		st, _ := s.newStore(t)
		g := &counter{value: []byte("secret")}
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				got, err := st.GetOrCreateSecret(t.Context(), "cookie", g.gen)
				if err != nil || !bytes.Equal(got, g.value) {
					t.Errorf("GetOrCreateSecret = %q, %v; want %q, nil", got, err, g.value)
				}
			})
		}
		wg.Wait()
		if n := g.calls.Load(); n != 1 {
			t.Errorf("generator called %d times by %d goroutines, want 1", n, goroutines)
		}
	})
}

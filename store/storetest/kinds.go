package storetest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/store"
)

// kind adapts one expiring record type to the tests every such type shares.
// Each record carries a mark, one of its string fields, so that the tests
// can tell versions of a record apart.
type kind struct {
	name string
	// create stores a record with the given id, mark and expiry.
	create func(ctx context.Context, st store.Store, id, mark string, expires time.Time) error
	// read returns the mark of the live record id.
	read func(ctx context.Context, st store.Store, id string) (string, error)
	// update, nil for kinds that cannot be updated, rewrites the mark.
	update func(ctx context.Context, st store.Store, id string, fn func(mark string) (string, error)) error
	// rekey, set when update is, tries to change the record's id.
	rekey func(ctx context.Context, st store.Store, id, newID string) error
	// del, nil for kinds that cannot be deleted, deletes the record.
	del func(ctx context.Context, st store.Store, id string) error
}

// kinds returns the adapters for every expiring record type.
func kinds() []kind {
	return []kind{
		{
			name: "Session",
			create: func(ctx context.Context, st store.Store, id, mark string, exp time.Time) error {
				return st.CreateSession(ctx, store.Session{ID: id, Login: mark, Expires: exp})
			},
			read: func(ctx context.Context, st store.Store, id string) (string, error) {
				s, err := st.GetSession(ctx, id)
				return s.Login, err
			},
			update: func(ctx context.Context, st store.Store, id string, fn func(string) (string, error)) error {
				return st.UpdateSession(ctx, id, func(s store.Session) (store.Session, error) {
					var err error
					s.Login, err = fn(s.Login)
					return s, err
				})
			},
			rekey: func(ctx context.Context, st store.Store, id, newID string) error {
				return st.UpdateSession(ctx, id, func(s store.Session) (store.Session, error) {
					s.ID = newID
					return s, nil
				})
			},
			del: func(ctx context.Context, st store.Store, id string) error { return st.DeleteSession(ctx, id) },
		},
		{
			name: "AuthCode",
			create: func(ctx context.Context, st store.Store, id, mark string, exp time.Time) error {
				return st.CreateAuthCode(ctx, store.AuthCode{ID: id, SessionID: mark, Expires: exp})
			},
			// Codes have no getter: read through an update that keeps
			// the code as it is.
			read: func(ctx context.Context, st store.Store, id string) (string, error) {
				var mark string
				err := st.UpdateAuthCode(ctx, id, func(c store.AuthCode) (store.AuthCode, error) {
					mark = c.SessionID
					return c, nil
				})
				return mark, err
			},
			update: func(ctx context.Context, st store.Store, id string, fn func(string) (string, error)) error {
				return st.UpdateAuthCode(ctx, id, func(c store.AuthCode) (store.AuthCode, error) {
					var err error
					c.SessionID, err = fn(c.SessionID)
					return c, err
				})
			},
			rekey: func(ctx context.Context, st store.Store, id, newID string) error {
				return st.UpdateAuthCode(ctx, id, func(c store.AuthCode) (store.AuthCode, error) {
					c.ID = newID
					return c, nil
				})
			},
		},
		{
			name: "DeviceCode",
			create: func(ctx context.Context, st store.Store, id, mark string, exp time.Time) error {
				return st.CreateDeviceCode(ctx, store.DeviceCode{ID: id, UserCode: "U" + id, ClientID: mark, Expires: exp})
			},
			read: func(ctx context.Context, st store.Store, id string) (string, error) {
				c, err := st.GetDeviceCodeByUserCode(ctx, "U"+id)
				return c.ClientID, err
			},
			update: func(ctx context.Context, st store.Store, id string, fn func(string) (string, error)) error {
				return st.UpdateDeviceCode(ctx, id, func(c store.DeviceCode) (store.DeviceCode, error) {
					var err error
					c.ClientID, err = fn(c.ClientID)
					return c, err
				})
			},
			rekey: func(ctx context.Context, st store.Store, id, newID string) error {
				return st.UpdateDeviceCode(ctx, id, func(c store.DeviceCode) (store.DeviceCode, error) {
					c.ID = newID
					return c, nil
				})
			},
		},
		{
			name: "RefreshFamily",
			create: func(ctx context.Context, st store.Store, id, mark string, exp time.Time) error {
				return st.CreateRefreshFamily(ctx, store.RefreshFamily{ID: id, CurrentHash: mark, Expires: exp})
			},
			read: func(ctx context.Context, st store.Store, id string) (string, error) {
				f, err := st.GetRefreshFamily(ctx, id)
				return f.CurrentHash, err
			},
			update: func(ctx context.Context, st store.Store, id string, fn func(string) (string, error)) error {
				return st.UpdateRefreshFamily(ctx, id, func(f store.RefreshFamily) (store.RefreshFamily, error) {
					var err error
					f.CurrentHash, err = fn(f.CurrentHash)
					return f, err
				})
			},
			rekey: func(ctx context.Context, st store.Store, id, newID string) error {
				return st.UpdateRefreshFamily(ctx, id, func(f store.RefreshFamily) (store.RefreshFamily, error) {
					f.ID = newID
					return f, nil
				})
			},
			del: func(ctx context.Context, st store.Store, id string) error { return st.DeleteRefreshFamily(ctx, id) },
		},
	}
}

// testKinds runs the shared tests for every expiring record type.
func (s *suite) testKinds(t *testing.T) {
	for _, k := range kinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Run("CreateRead", func(t *testing.T) { s.testCreateRead(t, k) })
			t.Run("Duplicate", func(t *testing.T) { s.testDuplicate(t, k) })
			t.Run("EmptyID", func(t *testing.T) { s.testEmptyID(t, k) })
			t.Run("Unknown", func(t *testing.T) { s.testUnknown(t, k) })
			t.Run("Expired", func(t *testing.T) { s.testExpired(t, k) })
			if k.update != nil {
				t.Run("Update", func(t *testing.T) { s.testUpdate(t, k) })
				t.Run("UpdateError", func(t *testing.T) { s.testUpdateError(t, k) })
				t.Run("UpdateChangesID", func(t *testing.T) { s.testUpdateChangesID(t, k) })
				t.Run("ConcurrentUpdates", func(t *testing.T) { s.testConcurrentUpdates(t, k) })
			}
			if k.del != nil {
				t.Run("Delete", func(t *testing.T) { s.testDelete(t, k) })
			}
		})
	}
}

// mustCreate creates a record or fails the test.
func mustCreate(t *testing.T, st store.Store, k kind, id, mark string, exp time.Time) {
	t.Helper()
	if err := k.create(t.Context(), st, id, mark, exp); err != nil {
		t.Fatalf("Create%s(%q): %v", k.name, id, err)
	}
}

// wantMark reads id and checks its mark.
func wantMark(t *testing.T, st store.Store, k kind, id, want string) {
	t.Helper()
	got, err := k.read(t.Context(), st, id)
	if err != nil {
		t.Fatalf("read %s %q: %v", k.name, id, err)
	}
	if got != want {
		t.Errorf("read %s %q: mark = %q, want %q", k.name, id, got, want)
	}
}

// wantNotFound reads id and expects ErrNotFound.
func wantNotFound(t *testing.T, st store.Store, k kind, id string) {
	t.Helper()
	if _, err := k.read(t.Context(), st, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("read %s %q = %v, want ErrNotFound", k.name, id, err)
	}
}

// notCalled is an update closure that fails the test if it runs.
func notCalled(t *testing.T) func(string) (string, error) {
	return func(m string) (string, error) {
		t.Errorf("update closure called on a record that is not live")
		return m, nil
	}
}

func (s *suite) testCreateRead(t *testing.T, k kind) {
	st, _ := s.newStore(t)
	mustCreate(t, st, k, "a", "mark-a", start.Add(time.Hour))
	mustCreate(t, st, k, "b", "mark-b", start.Add(time.Hour))
	wantMark(t, st, k, "a", "mark-a")
	wantMark(t, st, k, "b", "mark-b")
}

func (s *suite) testDuplicate(t *testing.T, k kind) {
	st, _ := s.newStore(t)
	mustCreate(t, st, k, "a", "first", start.Add(time.Hour))
	if err := k.create(t.Context(), st, "a", "second", start.Add(2*time.Hour)); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("second Create%s = %v, want ErrAlreadyExists", k.name, err)
	}
	wantMark(t, st, k, "a", "first")
}

func (s *suite) testEmptyID(t *testing.T, k kind) {
	st, _ := s.newStore(t)
	if err := k.create(t.Context(), st, "", "mark", start.Add(time.Hour)); err == nil {
		t.Errorf("Create%s with an empty id succeeded, want an error", k.name)
	}
}

func (s *suite) testUnknown(t *testing.T, k kind) {
	st, _ := s.newStore(t)
	mustCreate(t, st, k, "a", "mark", start.Add(time.Hour))
	wantNotFound(t, st, k, "unknown")
	if k.update != nil {
		if err := k.update(t.Context(), st, "unknown", notCalled(t)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Update%s(unknown) = %v, want ErrNotFound", k.name, err)
		}
	}
	if k.del != nil {
		if err := k.del(t.Context(), st, "unknown"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Delete%s(unknown) = %v, want ErrNotFound", k.name, err)
		}
	}
}

// testExpired checks that a record is live up to and including its Expires
// instant, invisible to every method right after it, and no obstacle to
// creating a new record with the same id.
func (s *suite) testExpired(t *testing.T, k kind) {
	st, clk := s.newStore(t)
	ctx := t.Context()
	exp := start.Add(time.Minute)
	mustCreate(t, st, k, "edge", "edge", exp)
	mustCreate(t, st, k, "a", "old", exp)
	clk.Advance(time.Minute)
	wantMark(t, st, k, "edge", "edge")
	clk.Advance(time.Nanosecond)
	wantNotFound(t, st, k, "a")
	if k.update != nil {
		if err := k.update(ctx, st, "a", notCalled(t)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Update%s of an expired record = %v, want ErrNotFound", k.name, err)
		}
	}
	if k.del != nil {
		if err := k.del(ctx, st, "a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Delete%s of an expired record = %v, want ErrNotFound", k.name, err)
		}
	}
	mustCreate(t, st, k, "b", "old", exp)
	if err := k.create(ctx, st, "b", "new", clk.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Create%s over an expired record: %v", k.name, err)
	}
	wantMark(t, st, k, "b", "new")
	mustCreate(t, st, k, "c", "born-expired", start)
	wantNotFound(t, st, k, "c")
}

func (s *suite) testUpdate(t *testing.T, k kind) {
	st, _ := s.newStore(t)
	mustCreate(t, st, k, "a", "v1", start.Add(time.Hour))
	mustCreate(t, st, k, "b", "other", start.Add(time.Hour))
	err := k.update(t.Context(), st, "a", func(m string) (string, error) {
		if m != "v1" {
			t.Errorf("update closure got mark %q, want %q", m, "v1")
		}
		return "v2", nil
	})
	if err != nil {
		t.Fatalf("Update%s: %v", k.name, err)
	}
	wantMark(t, st, k, "a", "v2")
	wantMark(t, st, k, "b", "other")
}

func (s *suite) testUpdateError(t *testing.T, k kind) {
	st, _ := s.newStore(t)
	mustCreate(t, st, k, "a", "v1", start.Add(time.Hour))
	err := k.update(t.Context(), st, "a", func(string) (string, error) { return "v2", errBoom })
	if !errors.Is(err, errBoom) {
		t.Errorf("Update%s with a failing closure = %v, want the closure's error", k.name, err)
	}
	wantMark(t, st, k, "a", "v1")
}

func (s *suite) testUpdateChangesID(t *testing.T, k kind) {
	st, _ := s.newStore(t)
	mustCreate(t, st, k, "a", "v1", start.Add(time.Hour))
	if err := k.rekey(t.Context(), st, "a", "b"); err == nil {
		t.Errorf("Update%s that changes the id succeeded, want an error", k.name)
	}
	wantMark(t, st, k, "a", "v1")
	wantNotFound(t, st, k, "b")
}

// testConcurrentUpdates has many goroutines increment a counter kept in the
// mark; a lost update shows as a short count.
func (s *suite) testConcurrentUpdates(t *testing.T, k kind) {
	st, clk := s.newStore(t)
	hs := s.handles(t, st, clk)
	mustCreate(t, st, k, "a", "0", start.Add(time.Hour))
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			err := k.update(t.Context(), hs[i%len(hs)], "a", func(m string) (string, error) {
				n, err := strconv.Atoi(m)
				return strconv.Itoa(n + 1), err
			})
			if err != nil {
				t.Errorf("Update%s: %v", k.name, err)
			}
		})
	}
	wg.Wait()
	wantMark(t, st, k, "a", strconv.Itoa(goroutines))
}

func (s *suite) testDelete(t *testing.T, k kind) {
	st, _ := s.newStore(t)
	mustCreate(t, st, k, "a", "v1", start.Add(time.Hour))
	mustCreate(t, st, k, "b", "other", start.Add(time.Hour))
	if err := k.del(t.Context(), st, "a"); err != nil {
		t.Fatalf("Delete%s: %v", k.name, err)
	}
	wantNotFound(t, st, k, "a")
	if err := k.del(t.Context(), st, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Delete%s = %v, want ErrNotFound", k.name, err)
	}
	wantMark(t, st, k, "b", "other")
	mustCreate(t, st, k, "a", "again", start.Add(time.Hour))
	wantMark(t, st, k, "a", "again")
}

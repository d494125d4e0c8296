package bolt_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/store/bolt"
	"github.com/ghbroker/ghbroker/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "ghbroker.db"), bolt.Options{Now: now})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// open opens path with a short lock timeout and fails the test on error.
func open(t *testing.T, path string, opts bolt.Options) *bolt.Store {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 100 * time.Millisecond
	}
	s, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

// mustClose closes s and fails the test on error.
func mustClose(t *testing.T, s *bolt.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}

// count returns how many records at level were logged.
func (r *recorder) count(level slog.Level) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.records {
		if rec.Level == level {
			n++
		}
	}
	return n
}

func TestFileMode(t *testing.T) {
	t.Run("New", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ghbroker.db")
		mustClose(t, open(t, path, bolt.Options{}))
		wantMode(t, path, 0o600)
	})
	// An existing file, here an empty one, which bbolt initialises, is
	// narrowed to 0600 with a warning.
	t.Run("ExistingLoose", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ghbroker.db")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		s := open(t, path, bolt.Options{Logger: slog.New(rec)})
		defer mustClose(t, s)
		wantMode(t, path, 0o600)
		if n := rec.count(slog.LevelWarn); n != 1 {
			t.Errorf("logged %d warnings, want 1", n)
		}
		if err := s.CreateSession(t.Context(), store.Session{ID: "s", Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Errorf("CreateSession in a store made from an empty file: %v", err)
		}
	})
}

// wantMode checks the permission bits of path.
func wantMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("mode of %s = %v, want %v", path, got, want)
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ghbroker.db")
	now := time.Now().Truncate(time.Second)
	clock := func() time.Time { return now }
	ctx := t.Context()
	session := store.Session{ID: "sid", Login: "octocat", Groups: []string{"acme"}, Expires: now.Add(time.Hour)}
	keys := store.Keys{Current: &store.SigningKey{KID: "k1", Algorithm: "EdDSA", PrivateJWK: []byte("{}")}, NextRotation: now}

	s := open(t, path, bolt.Options{Now: clock})
	if got := s.Path(); got != path {
		t.Errorf("Path() = %q, want %q", got, path)
	}
	if err := s.CreateSession(ctx, session); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if err := s.UpdateKeys(ctx, func(store.Keys) (store.Keys, error) { return keys, nil }); err != nil {
		t.Fatalf("UpdateKeys: %v", err)
	}
	secret, err := s.GetOrCreateSecret(ctx, "cookie", func() ([]byte, error) { return []byte("s3cret"), nil })
	if err != nil {
		t.Fatalf("GetOrCreateSecret: %v", err)
	}
	mustClose(t, s)

	s = open(t, path, bolt.Options{Now: clock})
	defer mustClose(t, s)
	gotSession, err := s.GetSession(ctx, session.ID)
	if err != nil || gotSession.Login != session.Login || len(gotSession.Groups) != 1 {
		t.Errorf("GetSession after reopen = %+v, %v; want %+v", gotSession, err, session)
	}
	gotKeys, err := s.GetKeys(ctx)
	if err != nil || gotKeys.Current == nil || gotKeys.Current.KID != "k1" {
		t.Errorf("GetKeys after reopen = %+v, %v; want %+v", gotKeys, err, keys)
	}
	gotSecret, err := s.GetOrCreateSecret(ctx, "cookie", func() ([]byte, error) { return []byte("other"), nil })
	if err != nil || !bytes.Equal(gotSecret, secret) {
		t.Errorf("GetOrCreateSecret after reopen = %q, %v; want %q", gotSecret, err, secret)
	}
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ghbroker.db")
	first := open(t, path, bolt.Options{})

	start := time.Now()
	second, err := bolt.Open(path, bolt.Options{Timeout: 200 * time.Millisecond})
	if err == nil {
		second.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("second Open gave up after %v, want about the 200ms timeout", waited)
	}
	locked, ok := errors.AsType[*bolt.LockedError](err)
	if !ok {
		t.Fatalf("second Open = %v (%T), want a *bolt.LockedError", err, err)
	}
	if locked.Path != path {
		t.Errorf("LockedError.Path = %q, want %q", locked.Path, path)
	}
	want := "store file " + path + " is locked by another process; is a second ghbroker running against the same file?"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}

	mustClose(t, first)
	mustClose(t, open(t, path, bolt.Options{}))
}

func TestInvalidFile(t *testing.T) {
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	real := validStore(t)
	foreign := filepath.Join(t.TempDir(), "foreign.db")
	rawUpdate(t, foreign, func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket([]byte("other"))
		return err
	})
	badVersion := validStore(t)
	rawUpdate(t, badVersion, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte("one"))
	})
	for _, tc := range []struct {
		name string
		data []byte // written to a fresh file unless nil
		path string // an existing file, when data is nil
	}{
		{name: "Text", data: []byte("listen: :8080\nissuer: https://sso.example.com\n")},
		{name: "Random16KiB", data: random(16 << 10)},
		{name: "Random4KiB", data: random(4 << 10)},
		{name: "TruncatedStore", data: readFile(t, real)[:8<<10]},
		{name: "ForeignBolt", path: foreign},
		{name: "BadSchemaVersion", path: badVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if tc.data != nil {
				path = filepath.Join(t.TempDir(), "ghbroker.db")
				if err := os.WriteFile(path, tc.data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before := readFile(t, path)
			// Twice: a failed Open must not leave the file locked.
			for range 2 {
				s, err := bolt.Open(path, bolt.Options{Timeout: 100 * time.Millisecond})
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded")
				}
				invalid, ok := errors.AsType[*bolt.InvalidFileError](err)
				if !ok {
					t.Fatalf("Open = %v (%T), want a *bolt.InvalidFileError", err, err)
				}
				if invalid.Path != path || !strings.HasPrefix(err.Error(), "store file "+path+" is not a ghbroker store: ") {
					t.Errorf("Open = %q (Path %q), want it to name %s", err, invalid.Path, path)
				}
				t.Logf("Open: %v", err)
			}
			if !bytes.Equal(readFile(t, path), before) {
				t.Error("Open changed the invalid file")
			}
		})
	}
}

// validStore creates a store file and returns its path.
func validStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ghbroker.db")
	s := open(t, path, bolt.Options{})
	if err := s.CreateSession(t.Context(), store.Session{ID: "s", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	mustClose(t, s)
	return path
}

// rawUpdate runs fn in a bbolt transaction on path, bypassing the store.
func rawUpdate(t *testing.T, path string, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSchemaVersion(t *testing.T) {
	path := validStore(t)
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte("2"))
	})
	_, err := bolt.Open(path, bolt.Options{Timeout: 100 * time.Millisecond})
	verr, ok := errors.AsType[*bolt.SchemaVersionError](err)
	if !ok {
		t.Fatalf("Open of a newer store = %v (%T), want a *bolt.SchemaVersionError", err, err)
	}
	if verr.Version != 2 || verr.Path != path {
		t.Errorf("SchemaVersionError = %+v, want Version 2, Path %q", verr, path)
	}
	t.Logf("Open: %v", err)

	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte("1"))
	})
	mustClose(t, open(t, path, bolt.Options{}))
}

func TestOpenBadPath(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, path string
		is         error
	}{
		{"MissingDirectory", filepath.Join(dir, "no", "such", "dir", "ghbroker.db"), fs.ErrNotExist},
		{"Directory", dir, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := bolt.Open(tc.path, bolt.Options{Timeout: 100 * time.Millisecond})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("Open = %q, want it to name %s", err, tc.path)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("Open = %v, want an error matching %v", err, tc.is)
			}
			if _, ok := errors.AsType[*bolt.InvalidFileError](err); ok {
				t.Errorf("Open = %v, an *InvalidFileError; want an OS error", err)
			}
			t.Logf("Open: %v", err)
		})
	}
}

// Package bolt is the embedded store.Store engine: one file, written with
// go.etcd.io/bbolt.
//
// It owns the file: creating it with mode 0600, holding bbolt's exclusive
// lock while open, a bucket per record kind with JSON values, a schema
// version in a "meta" bucket, and the sweeper that deletes expired records.
// It does not own the record types or the contract (package store), nor
// replication: one ghbroker process opens a file at a time, and a second
// opener gets a *LockedError after Options.Timeout.
//
// bbolt's caveats apply and are handled here: values are valid only inside
// their transaction, so every record is decoded (copied) before it leaves
// one; there is a single writer, so every read-modify-write is one Update
// transaction and concurrent updates are serialised; and the lock wait is
// always bounded.
package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/ghbroker/ghbroker/store"
)

var _ store.Store = (*Store)(nil)

// SchemaVersion is the version of the on-disk layout this package writes.
// Open refuses a file with a newer version.
const SchemaVersion = 1

// DefaultTimeout is how long Open waits for another holder's lock when
// Options.Timeout is zero.
const DefaultTimeout = time.Second

// Bucket and key names. The expiring buckets all hold JSON objects with
// "id" and "expires" members (see header).
var (
	bucketMeta     = []byte("meta")
	bucketKeys     = []byte("keys")
	bucketSecrets  = []byte("secrets")
	bucketSessions = []byte("sessions")
	// bucketLogins held pending sign-ins before they moved into a sealed
	// cookie; nothing writes it now, and the sweeper empties old files.
	bucketLogins   = []byte("login_states")
	bucketCodes    = []byte("auth_codes")
	bucketFamilies = []byte("refresh_families")
	bucketDevices  = []byte("device_codes")
	// bucketDeliveries holds GitHub webhook delivery ids.
	bucketDeliveries = []byte("webhook_deliveries")
	// bucketRevocations holds the revocation set.
	bucketRevocations = []byte("revocations")
	// bucketUserCodes indexes device_codes by user code (see userCodeEntry).
	bucketUserCodes = []byte("device_user_codes")
	// bucketCounters holds store.Counter records (the deployment's budget
	// of wrong device user codes), swept like every expiring record.
	bucketCounters = []byte("counters")

	keySchemaVersion = []byte("schema_version")
	keyKeys          = []byte("keys")
)

// expiringBuckets returns the buckets whose records expire.
func expiringBuckets() [][]byte {
	return [][]byte{bucketSessions, bucketLogins, bucketCodes, bucketFamilies, bucketDevices, bucketUserCodes, bucketDeliveries, bucketRevocations, bucketCounters}
}

// Options configures Open.
type Options struct {
	// Now is the clock that decides whether a record has expired, and the
	// time RunSweeper sweeps at; nil means time.Now.
	Now func() time.Time
	// Timeout bounds the wait for a lock held by another opener of the
	// file; zero means DefaultTimeout. After it Open returns a
	// *LockedError.
	Timeout time.Duration
	// Logger receives the sweeper's reports and warnings about the file;
	// nil discards them.
	Logger *slog.Logger
}

// Store is a store.Store kept in one bbolt file. It is safe for concurrent
// use.
type Store struct {
	db   *bbolt.DB
	path string
	now  func() time.Time
	log  *slog.Logger
}

// LockedError means another process, or another Open in this one, holds
// the store file.
type LockedError struct {
	// Path is the store file.
	Path string
}

// Error implements error.
func (e *LockedError) Error() string {
	return fmt.Sprintf("store file %s is locked by another process; is a second ghbroker running against the same file?", e.Path)
}

// InvalidFileError means the file exists but is not a ghbroker store: not a
// bbolt database, a damaged or truncated one, or somebody else's.
type InvalidFileError struct {
	// Path is the store file.
	Path string
	// Err says what is wrong with it.
	Err error
}

// Error implements error.
func (e *InvalidFileError) Error() string {
	return fmt.Sprintf("store file %s is not a ghbroker store: %v", e.Path, e.Err)
}

// Unwrap returns e.Err.
func (e *InvalidFileError) Unwrap() error { return e.Err }

// SchemaVersionError means the file was written by a newer ghbroker, with a
// layout this one does not know.
type SchemaVersionError struct {
	// Path is the store file.
	Path string
	// Version is the file's schema version.
	Version int
}

// Error implements error.
func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("store file %s has schema version %d, newer than the %d this ghbroker supports; upgrade ghbroker", e.Path, e.Version, SchemaVersion)
}

// Open opens the store file at path, creating it with mode 0600 when it
// does not exist (the directory must exist). An existing file readable or
// writable by group or others is narrowed to 0600, with a warning.
//
// Open fails with a *LockedError when another opener holds the file past
// opts.Timeout, an *InvalidFileError when the file is not a ghbroker
// store, and a *SchemaVersionError when a newer ghbroker wrote it. It never
// panics on a bad file.
func Open(path string, opts Options) (*Store, error) {
	s := &Store{path: path, now: opts.Now, log: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	db, opened, err := s.openDB(timeout)
	if err == nil {
		s.db = db
		return s, nil
	}
	var invalid *InvalidFileError
	var version *SchemaVersionError
	switch {
	case errors.As(err, &invalid) || errors.As(err, &version):
		return nil, err
	case errors.Is(err, berrors.ErrTimeout):
		return nil, &LockedError{Path: path}
	case !opened && errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("store/bolt: open store file %s: directory %s does not exist: %w", path, filepath.Dir(path), err)
	case isOSError(err):
		return nil, fmt.Errorf("store/bolt: open store file %s: %w", path, err)
	default:
		// The OS opened and locked the file; bbolt could not read it.
		return nil, &InvalidFileError{Path: path, Err: fmt.Errorf("not a readable bbolt database: %w", err)}
	}
}

// isOSError reports whether err came from the operating system rather than
// from bbolt judging the file's contents.
func isOSError(err error) bool {
	var pathErr *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pathErr) || errors.As(err, &errno)
}

// openDB opens, locks and initialises the file. opened reports whether the
// OS opened it (so that a later error concerns its contents or its lock).
//
// bbolt reads a damaged or truncated file through its memory map and can
// fault or panic doing so; openDB turns either into an error, unlocking and
// closing the file. The mapping, which bbolt alone can unmap, is left
// behind: a small leak on a path that ends in an error at startup.
func (s *Store) openDB(timeout time.Duration) (db *bbolt.DB, opened bool, err error) {
	var file *os.File
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				_ = unlock(file)
				_ = file.Close()
			}
			db, err = nil, &InvalidFileError{Path: s.path, Err: fmt.Errorf("a damaged or truncated bbolt database (reading it failed: %v)", r)}
		}
	}()
	db, err = bbolt.Open(s.path, 0o600, &bbolt.Options{
		Timeout: timeout,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			if err != nil {
				return nil, err
			}
			if err := s.narrowMode(f); err != nil {
				_ = f.Close()
				return nil, err
			}
			file, opened = f, true
			return f, nil
		},
	})
	if err != nil {
		return nil, opened, err
	}
	if err := db.Update(s.initialise); err != nil {
		_ = db.Close()
		return nil, opened, err
	}
	return db, opened, nil
}

// narrowMode makes the open store file f readable and writable by its owner
// only, if group or others had any access.
func (s *Store) narrowMode(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			return fmt.Errorf("narrow mode %v to 0600: %w", mode, err)
		}
		s.log.Warn("store file was accessible to group or others; changed its mode to 0600",
			"path", s.path, "old_mode", mode.String())
	}
	return nil
}

// initialise checks the schema version of an existing store, or writes it
// into a new one, and creates any missing bucket.
func (s *Store) initialise(tx *bbolt.Tx) error {
	if meta := tx.Bucket(bucketMeta); meta != nil {
		raw := meta.Get(keySchemaVersion)
		v, err := strconv.Atoi(string(raw))
		if err != nil {
			return &InvalidFileError{Path: s.path, Err: fmt.Errorf("schema version %q is not a number", raw)}
		}
		if v > SchemaVersion {
			return &SchemaVersionError{Path: s.path, Version: v}
		}
	} else {
		if name, _ := tx.Cursor().First(); name != nil {
			return &InvalidFileError{Path: s.path, Err: fmt.Errorf("a bbolt database without ghbroker's %q bucket (its first bucket is %q)", bucketMeta, name)}
		}
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(keySchemaVersion, []byte(strconv.Itoa(SchemaVersion))); err != nil {
			return err
		}
	}
	for _, b := range append(expiringBuckets(), bucketKeys, bucketSecrets) {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

// Path returns the store file's path, as given to Open.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock. Every later call fails.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store/bolt: close %s: %w", s.path, err)
	}
	return nil
}

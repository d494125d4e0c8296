// Package etcd is the store.Store engine for any number of ghbroker
// replicas sharing one state: every record lives in etcd v3
// (go.etcd.io/etcd/client/v3) under one key prefix.
//
// It owns the layout under the prefix (a schema-version key, then one key
// per record, each a small versioned JSON value; see layout.go), and the
// rules that make several replicas one broker:
//
//   - Expiry is a lease: a record that expires is written with a lease
//     whose TTL ends after its Expires time, and etcd deletes it. Records
//     that expire close together share a lease (see leases.go), so a
//     create is one raft write, and etcd deletes a record up to a bucket
//     width (1 s to 5 min, a sixteenth of its lifetime) after it expired.
//     Readers compare Expires with the store's clock, so a record is
//     invisible from the instant it expires. Sweep has nothing to do.
//   - A read-modify-write (every Update…) is a transaction guarded by the
//     key's ModRevision. A writer that lost runs its closure again on the
//     record as the winner left it, after a jittered exponential backoff,
//     up to MaxAttempts times; past that the call fails with
//     store.ErrUnavailable rather than losing an update.
//   - A create is a transaction "only if absent (or expired)"; a delete is
//     a transaction guarded by the ModRevision it read, so that of several
//     concurrent deletes exactly one reports success.
//   - Every request runs under a bounded context (Options.RequestTimeout)
//     and a bounded number run at once (Options.MaxInFlight): a slow or
//     unreachable etcd turns into store.ErrUnavailable within the timeout,
//     never into a pile of waiting goroutines.
//
// It does not own the record types or the contract (package store), nor
// etcd itself: the cluster, its TLS and its users are the operator's.
package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/ghbroker/ghbroker/store"
)

var _ store.Store = (*Store)(nil)

// SchemaVersion is the version of the layout under the prefix that this
// package writes. Open refuses a prefix with a newer version.
const SchemaVersion = 1

// Defaults for Options.
const (
	DefaultPrefix         = "/ghbroker/"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 3 * time.Second
	DefaultMaxAttempts    = 100
	DefaultMaxInFlight    = 256
)

// Options configures Open.
type Options struct {
	// Endpoints are the client URLs of the etcd members. Required.
	Endpoints []string
	// Prefix is prepended to every key; it must end in "/". Default
	// DefaultPrefix.
	Prefix string
	// DialTimeout bounds the first contact with the cluster at Open.
	// Default DefaultDialTimeout.
	DialTimeout time.Duration
	// RequestTimeout bounds every store call, retries included.
	// Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// AttemptTimeout bounds one request to etcd within a call, so that a
	// request stuck on a member that lost its leader is tried again after
	// the election rather than waited for. Default a third of
	// RequestTimeout, at least 300ms.
	AttemptTimeout time.Duration
	// MaxAttempts bounds the transactions one read-modify-write tries
	// before it gives up on contention. Default DefaultMaxAttempts.
	MaxAttempts int
	// MaxInFlight bounds the store calls talking to etcd at once; a call
	// beyond it waits (within RequestTimeout) for a turn. Default
	// DefaultMaxInFlight.
	MaxInFlight int
	// TLS, when set, is used for every connection (server verification
	// and, with a client certificate, mTLS).
	TLS *tls.Config
	// Username and Password, when Username is set, authenticate to etcd.
	Username string
	Password string
	// Now is the clock that decides whether a record has expired and how
	// long its lease lives; nil means time.Now.
	Now func() time.Time
	// Logger receives reports on the cluster's state; nil discards them.
	Logger *slog.Logger
	// Registerer, when set, receives the store's metrics (request
	// latency, failures, cluster state).
	Registerer prometheus.Registerer
	// MonitorEvery is how often the store asks every endpoint for its
	// status (leader, reachability) for logs and metrics; zero means 10s,
	// negative turns the monitor off.
	MonitorEvery time.Duration
}

// Store is a store.Store on etcd. It is safe for concurrent use, by any
// number of processes sharing the cluster and the prefix.
type Store struct {
	cli       *clientv3.Client
	prefix    string
	endpoints []string
	now       func() time.Time
	log       *slog.Logger
	timeout   time.Duration
	// attemptTimeout bounds one RPC within a call (see within).
	attemptTimeout time.Duration
	maxAttempts    int
	// laterKinds are record kinds the schema key lists that this
	// ghbroker does not write (a newer one's): they are not foreign.
	laterKinds []string
	sem        chan struct{}
	metrics    *metrics

	closed atomic.Bool
	// bg is done once Close is called; background work ends with it.
	bg   context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	// stripes serialise this process's read-modify-writes of one key
	// (by a hash of the key), so that goroutines of one replica queue
	// instead of wasting compare-and-swap rounds on each other; CAS with
	// retries settles contention between replicas.
	stripes [64]chan struct{}
	// pool holds the leases records share (see leases.go).
	pool leasePool
	// secretMu makes GetOrCreateSecret call its generator once per
	// process when several goroutines find the secret missing; across
	// processes the create transaction picks one value.
	secretMu sync.Mutex
}

// errClosed is returned by every call after Close.
var errClosed = errors.New("store/etcd: store is closed")

// UnreachableError means no endpoint answered within the dial timeout at
// Open.
type UnreachableError struct {
	// Endpoints are the URLs tried.
	Endpoints []string
	// Timeout is how long Open waited.
	Timeout time.Duration
	// Err is the last error seen.
	Err error
}

// Error implements error.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("etcd at %s did not answer within %s: %v", strings.Join(e.Endpoints, ", "), e.Timeout, e.Err)
}

// Unwrap returns store.ErrUnavailable and e.Err.
func (e *UnreachableError) Unwrap() []error { return []error{store.ErrUnavailable, e.Err} }

// SchemaVersionError means the prefix was written by a newer ghbroker.
type SchemaVersionError struct {
	// Prefix is the key prefix.
	Prefix string
	// Version is the version found.
	Version int
}

// Error implements error.
func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("etcd prefix %s has schema version %d, newer than the %d this ghbroker supports; upgrade ghbroker", e.Prefix, e.Version, SchemaVersion)
}

// ForeignKeyError means the prefix holds keys that are not ghbroker's.
type ForeignKeyError struct {
	// Prefix is the key prefix.
	Prefix string
	// Key is one foreign key found.
	Key string
}

// Error implements error.
func (e *ForeignKeyError) Error() string {
	return fmt.Sprintf("etcd prefix %s holds %q, which is not a ghbroker key; is the prefix shared with another program? Choose another storage.etcd.prefix", e.Prefix, e.Key)
}

// Open connects to the cluster, checks that the prefix is ghbroker's (a
// schema-version key of a version this package knows, no foreign keys), and
// writes the schema version into an empty prefix.
//
// It fails with an *UnreachableError when no endpoint answers within
// opts.DialTimeout, a *SchemaVersionError or *ForeignKeyError for a prefix
// it must not touch.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("store/etcd: no endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(opts.Prefix, "/") || !strings.HasSuffix(opts.Prefix, "/") {
		return nil, fmt.Errorf("store/etcd: prefix %q must start and end with /", opts.Prefix)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = max(opts.RequestTimeout/3, 300*time.Millisecond)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("store/etcd: metrics: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   opts.Endpoints,
		DialTimeout: opts.DialTimeout,
		TLS:         opts.TLS,
		Username:    opts.Username,
		Password:    opts.Password,
		Logger:      zap.NewNop(),
		// Keep the connection alive through idle periods, and notice a
		// dead member within seconds.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("store/etcd: connect to %s: %w", strings.Join(opts.Endpoints, ", "), err)
	}
	s := &Store{
		cli: cli, prefix: opts.Prefix, endpoints: opts.Endpoints, now: opts.Now, log: opts.Logger,
		timeout: opts.RequestTimeout, attemptTimeout: opts.AttemptTimeout, maxAttempts: opts.MaxAttempts,
		sem: make(chan struct{}, opts.MaxInFlight), metrics: m,
	}
	s.pool.leases, s.pool.maxKeys, s.pool.maxLeases = map[bucketKey]*pooled{}, maxLeaseKeys, maxPooled
	for i := range s.stripes {
		s.stripes[i] = make(chan struct{}, 1)
	}
	if err := s.initialise(ctx, opts.DialTimeout); err != nil {
		cli.Close()
		return nil, err
	}
	s.bg, s.stop = context.WithCancel(context.Background())
	if opts.MonitorEvery >= 0 {
		every := opts.MonitorEvery
		if every == 0 {
			every = 10 * time.Second
		}
		s.wg.Go(func() { s.monitor(s.bg, every) })
	}
	return s, nil
}

// Endpoints returns the endpoints the store was opened with.
func (s *Store) Endpoints() []string { return append([]string(nil), s.endpoints...) }

// Prefix returns the key prefix.
func (s *Store) Prefix() string { return s.prefix }

// Close stops the store's background work and its connections. Every later
// call fails.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stop()
	err := s.cli.Close()
	s.wg.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("store/etcd: close: %w", err)
	}
	return nil
}

// Sweep does nothing: leases delete expired records. It reports 0.
func (s *Store) Sweep(ctx context.Context, _ time.Time) (int, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("store/etcd: sweep: %w", err)
	}
	return 0, nil
}

// callerError carries an error from a caller's closure or generator out of
// a call, so that it is returned as it is rather than wrapped.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }

// do runs one store call: it refuses a closed store or a done context,
// takes an in-flight slot, bounds the call by the request timeout, and
// classifies the error. fn receives the bounded context.
func (s *Store) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store/etcd: %s: %w", op, err)
	}
	start := time.Now()
	bctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	select {
	case s.sem <- struct{}{}:
	case <-bctx.Done():
		return s.classify(ctx, op, start, fmt.Errorf("%d calls already waiting on etcd: %w", cap(s.sem), bctx.Err()))
	}
	defer func() { <-s.sem }()
	err := fn(clientv3.WithRequireLeader(bctx))
	return s.classify(ctx, op, start, err)
}

// classify records the call in the metrics and turns its error into what
// callers branch on: the caller's own cancellation as it is, errors of the
// caller's closures as they are, store sentinels as they are, anything
// else from etcd (timeouts, no leader, no connection) as
// store.ErrUnavailable.
func (s *Store) classify(ctx context.Context, op string, start time.Time, err error) error {
	out, unavailable := s.translate(ctx, op, err)
	s.metrics.observe(op, time.Since(start), unavailable)
	return out
}

// translate is classify without the metrics; unavailable reports an
// error answered as store.ErrUnavailable.
func (s *Store) translate(ctx context.Context, op string, err error) (out error, unavailable bool) {
	if err == nil {
		return nil, false
	}
	if ce, ok := errors.AsType[*callerError](err); ok {
		return ce.err, false
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAlreadyExists) {
		return err, false
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("store/etcd: %s: %w", op, cerr), false
	}
	if s.closed.Load() {
		return errClosed, false
	}
	if errors.Is(err, errInvalid) {
		return fmt.Errorf("store/etcd: %s: %w", op, err), false
	}
	return fmt.Errorf("store/etcd: %s: %w: %w", op, store.ErrUnavailable, err), true
}

// lockKey takes this process's lock on key, or fails when ctx ends first.
// On success the caller must call the returned unlock.
func (s *Store) lockKey(ctx context.Context, key string) (unlock func(), err error) {
	h := fnv.New32a()
	h.Write([]byte(key))
	c := s.stripes[h.Sum32()%uint32(len(s.stripes))]
	select {
	case c <- struct{}{}:
		return func() { <-c }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for other writers of %s in this process: %w", key, ctx.Err())
	}
}

// errInvalid marks errors about a call's arguments or a record's content,
// which retrying cannot cure.
var errInvalid = errors.New("invalid")

// invalid returns an error matching errInvalid.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalid, fmt.Sprintf(format, args...))
}

package etcd

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Records share leases. A lease grant is a raft write of its own, as costly
// as the put it serves, so a lease per record would double the writes of
// every create. Instead each Store keeps a small pool of leases, one per
// expiry bucket: a record that expires at t goes on the pooled lease of
// the bucket holding t, whose TTL ends (a second) after the bucket's end.
// etcd thus deletes a record at most a bucket width, plus about two
// seconds, after its expiry; until then readers hide it by comparing its
// Expires with the store's clock, as they always did.
//
// A bucket's width scales with the record's remaining lifetime (about a
// sixteenth of it, from 1 s to 5 min), so that short-lived records go
// soon. At most maxLeaseKeys keys go on one lease, so that its expiry
// deletes a bounded number of keys in one raft entry; a full lease is
// replaced by a fresh one. Of the callers needing a lease for one bucket
// at once, one grants it and the others wait for it. A pooled lease that
// etcd no longer knows (revoked by someone, or expired early) is dropped
// and the write tried once more on a fresh one.
//
// Since a lease is shared, nothing ever revokes one: deleting or updating
// a record leaves its old lease to the others, and the lease ends by
// itself. Nor does a lease say which call wrote a value any more: the
// nonce in every value does (see encode).

const (
	// maxLeaseKeys bounds the keys attached to one pooled lease.
	maxLeaseKeys = 1000
	// maxPooled bounds the leases a Store remembers; past it, the least
	// recently used is forgotten (the next record of its bucket gets a
	// fresh lease).
	maxPooled = 1024
	// bucketShare: a bucket spans at most this fraction of the remaining
	// lifetime of the records in it.
	bucketShare = 16
)

// bucketWidth returns the width of the bucket of a record with life left
// to live: the largest of 1 s, 2 s, 5 s, 10 s, 30 s, 1 min, 2 min and
// 5 min that is at most a sixteenth of life, or 1 s. A few fixed widths
// keep records of one kind in the same buckets although their lifetimes
// differ by the instants they were computed at.
func bucketWidth(life time.Duration) time.Duration {
	w := life / bucketShare
	for _, c := range [...]time.Duration{5 * time.Minute, 2 * time.Minute, time.Minute, 30 * time.Second, 10 * time.Second, 5 * time.Second, 2 * time.Second} {
		if w >= c {
			return c
		}
	}
	return time.Second
}

// bucketKey names a bucket: its width and its start, in Unix nanoseconds.
type bucketKey struct {
	width time.Duration
	start int64
}

// bucket returns the bucket of a record expiring at expires, and the
// instant the bucket ends.
func (s *Store) bucket(expires time.Time) (bucketKey, time.Time) {
	w := bucketWidth(expires.Sub(s.now()))
	start := expires.Truncate(w)
	return bucketKey{width: w, start: start.UnixNano()}, start.Add(w)
}

// leaseTTL returns the lease TTL, in seconds, for records that expire at
// most at end: rounded up, plus a second, so that etcd never deletes a
// record before the store's clock says it expired. etcd raises a TTL below
// its minimum (about 1.5 election timeouts) to that minimum.
func (s *Store) leaseTTL(end time.Time) int64 {
	d := end.Sub(s.now())
	secs := int64(d / time.Second)
	if d%time.Second > 0 {
		secs++
	}
	return max(secs, 0) + 1
}

// leasePool is a Store's pooled leases, by bucket.
type leasePool struct {
	mu     sync.Mutex
	leases map[bucketKey]*pooled
	// maxKeys and maxLeases are maxLeaseKeys and maxPooled (tests lower
	// them).
	maxKeys, maxLeases int
}

// pooled is one pooled lease, or the grant of one under way.
type pooled struct {
	// ready is closed once the grant is done; then either id or err is
	// set, and neither changes again.
	ready chan struct{}
	id    clientv3.LeaseID
	err   error
	// The fields below are guarded by the pool's mutex.
	//
	// keys counts the keys attached, or being attached, to the lease (a
	// write that failed still counts: the bound is an upper one).
	keys int
	// end is when the bucket ends, by the store's clock.
	end time.Time
	// dies is the earliest instant etcd may expire the lease, by this
	// process's monotonic clock: etcd counts a TTL in real time,
	// whatever the store's clock says.
	dies time.Time
	// used is when the lease was last handed out (monotonic).
	used time.Time
}

// leaseFor returns a pooled lease of bucket key (which ends at end) for n
// keys of records expiring at expires, granting one when the pool has
// none that fits: none yet, full, or with too little life left.
func (s *Store) leaseFor(ctx context.Context, key bucketKey, end, expires time.Time, n int) (clientv3.LeaseID, error) {
	p := &s.pool
	for {
		p.mu.Lock()
		e := p.leases[key]
		if e != nil && e.id == 0 && e.err == nil {
			// Another caller is granting this bucket's lease: wait for it.
			p.mu.Unlock()
			select {
			case <-e.ready:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			if e.err != nil && !errors.Is(e.err, context.Canceled) && !errors.Is(e.err, context.DeadlineExceeded) {
				return 0, e.err
			}
			// Granted (take a share of it), or its caller gave up (grant
			// one ourselves): look again.
			continue
		}
		if e != nil && e.keys+n <= p.maxKeys && time.Until(e.dies) > expires.Sub(s.now()) {
			e.keys += n
			e.used = time.Now()
			p.mu.Unlock()
			return e.id, nil
		}
		mine := &pooled{ready: make(chan struct{}), keys: n, end: end}
		p.prune(s.now())
		p.leases[key] = mine
		p.mu.Unlock()

		id, dies, err := s.grant(ctx, end)
		p.mu.Lock()
		mine.id, mine.err, mine.dies, mine.used = id, err, dies, time.Now()
		if err != nil && p.leases[key] == mine {
			delete(p.leases, key)
		}
		close(mine.ready)
		p.mu.Unlock()
		return id, err
	}
}

// prune forgets the leases whose bucket has ended by the store's clock
// (now) or which etcd may have expired, and the least recently used one
// when the pool is full. The caller holds p.mu.
func (p *leasePool) prune(now time.Time) {
	var oldest bucketKey
	var oldestUsed time.Time
	for k, e := range p.leases {
		if e.id == 0 {
			continue // being granted
		}
		if !now.Before(e.end) || time.Now().After(e.dies) {
			delete(p.leases, k)
			continue
		}
		if oldestUsed.IsZero() || e.used.Before(oldestUsed) {
			oldest, oldestUsed = k, e.used
		}
	}
	if len(p.leases) >= p.maxLeases && !oldestUsed.IsZero() {
		delete(p.leases, oldest)
	}
}

// dropLease forgets pooled lease id of bucket key, which etcd no longer
// knows.
func (s *Store) dropLease(key bucketKey, id clientv3.LeaseID) {
	p := &s.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.leases[key]; e != nil && e.id == id {
		delete(p.leases, key)
	}
}

// grant grants a lease that ends after end, and returns it with the
// earliest instant etcd may expire it (monotonic).
func (s *Store) grant(ctx context.Context, end time.Time) (clientv3.LeaseID, time.Time, error) {
	began := time.Now()
	ttl := s.leaseTTL(end)
	var resp *clientv3.LeaseGrantResponse
	err := s.repeat(ctx, func() error {
		var err error
		resp, err = within(s, ctx, func(c context.Context) (*clientv3.LeaseGrantResponse, error) {
			return s.cli.Grant(c, ttl)
		})
		return err
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	s.metrics.leaseGrants.Inc()
	return resp.ID, began.Add(time.Duration(resp.TTL) * time.Second), nil
}

// callLease is the pooled lease one call puts its keys on.
type callLease struct {
	s *Store
	// n is how many keys the call puts on the lease.
	n   int
	id  clientv3.LeaseID
	key bucketKey
	// replaced is set once the call replaced a lease etcd no longer
	// knew; it does so at most once.
	replaced bool
}

// get returns the pooled lease for the call's keys of records expiring at
// expires, asking the pool only when the call has none for that bucket
// yet.
func (l *callLease) get(ctx context.Context, expires time.Time) (clientv3.LeaseID, error) {
	key, end := l.s.bucket(expires)
	if l.id != 0 && l.key == key {
		return l.id, nil
	}
	id, err := l.s.leaseFor(ctx, key, end, expires, l.n)
	if err != nil {
		return 0, err
	}
	l.id, l.key = id, key
	return id, nil
}

// gone handles a write on the call's lease that etcd refused with
// ErrLeaseNotFound: it drops the lease from the pool and reports whether
// the call may try once more, on a fresh lease.
func (l *callLease) gone(err error) bool {
	if !errors.Is(err, rpctypes.ErrLeaseNotFound) || l.id == 0 || l.replaced {
		return false
	}
	l.s.log.Warn("etcd store: a shared lease was revoked or expired early, with the records on it; granting another", "lease", int64(l.id))
	l.s.dropLease(l.key, l.id)
	l.id, l.replaced = 0, true
	return true
}

package bolt

import (
	"bytes"
	"context"
	"time"

	"go.etcd.io/bbolt"
)

// DefaultSweepInterval is how often RunSweeper sweeps when given a
// non-positive interval.
const DefaultSweepInterval = time.Minute

// Sweep deletes every record that expired before now and reports how many
// it deleted. Keys and secrets never expire.
//
// It finds candidates in a read-only transaction and deletes them in a
// short write transaction that checks each one again, so that a large
// store does not hold up writers for the length of a full scan.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	dead := map[string][][]byte{} // bucket → keys
	err := s.view(ctx, "sweep", func(tx *bbolt.Tx) error {
		for _, name := range expiringBuckets() {
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				if s.expired(name, v, now) {
					dead[string(name)] = append(dead[string(name)], bytes.Clone(k))
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || len(dead) == 0 {
		return 0, err
	}
	n := 0
	err = s.update(ctx, "sweep", func(tx *bbolt.Tx) error {
		n = 0
		for name, keys := range dead {
			b := tx.Bucket([]byte(name))
			for _, k := range keys {
				// The record may have been deleted or re-created since.
				if v := b.Get(k); v == nil || !s.expired([]byte(name), v, now) {
					continue
				}
				if err := b.Delete(k); err != nil {
					return err
				}
				if name != string(bucketUserCodes) { // an index entry is not a record
					n++
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// expired reports whether the record v of bucket expired before now. A
// record that does not decode is kept, with a warning: deleting what the
// store cannot read is for a person to decide.
func (s *Store) expired(bucket, v []byte, now time.Time) bool {
	h, err := readHeader(v)
	if err != nil {
		s.log.Warn("store sweep: skipping a record that does not decode",
			"path", s.path, "bucket", string(bucket), "error", err)
		return false
	}
	return h.Expires.Before(now)
}

// RunSweeper calls Sweep every interval, at the time of the store's clock,
// until ctx is done; a non-positive every means DefaultSweepInterval. It
// logs what each sweep deleted and any error. Cancel ctx before Close.
func (s *Store) RunSweeper(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultSweepInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.Sweep(ctx, s.now())
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			s.log.Error("store sweep failed", "path", s.path, "error", err)
		case n > 0:
			s.log.Info("store sweep deleted expired records", "path", s.path, "deleted", n)
		default:
			s.log.Debug("store sweep found nothing to delete", "path", s.path)
		}
	}
}

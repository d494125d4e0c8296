package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ghbroker/ghbroker/store"
)

var (
	_ store.Exporter = (*Store)(nil)
	_ store.Importer = (*Store)(nil)
)

// Export returns every live record, read in one transaction.
func (s *Store) Export(ctx context.Context) (store.Snapshot, error) {
	snap := store.Snapshot{Secrets: map[string][]byte{}}
	now := s.now()
	err := s.view(ctx, "export", func(tx *bbolt.Tx) error {
		if data := tx.Bucket(bucketKeys).Get(keyKeys); data != nil {
			var k store.Keys
			if err := json.Unmarshal(data, &k); err != nil {
				return fmt.Errorf("decode keys: %w", err)
			}
			snap.Keys = &k
		}
		if err := tx.Bucket(bucketSecrets).ForEach(func(k, v []byte) error {
			snap.Secrets[string(k)] = bytes.Clone(v)
			return nil
		}); err != nil {
			return err
		}
		if err := exportBucket(tx, bucketSessions, now, &snap.Sessions); err != nil {
			return err
		}
		if err := exportBucket(tx, bucketCodes, now, &snap.AuthCodes); err != nil {
			return err
		}
		if err := exportBucket(tx, bucketFamilies, now, &snap.RefreshFamilies); err != nil {
			return err
		}
		if err := exportBucket(tx, bucketDevices, now, &snap.DeviceCodes); err != nil {
			return err
		}
		if err := exportBucket(tx, bucketRevocations, now, &snap.Revocations); err != nil {
			return err
		}
		return exportBucket(tx, bucketDeliveries, now, &snap.Deliveries)
	})
	if err != nil {
		return store.Snapshot{}, err
	}
	return snap, nil
}

// exportBucket appends the live records of bucket to out.
func exportBucket[T any](tx *bbolt.Tx, bucket []byte, now time.Time, out *[]T) error {
	b := tx.Bucket(bucket)
	return b.ForEach(func(k, _ []byte) error {
		data, err := live(b, string(k), now)
		if errors.Is(err, store.ErrNotFound) {
			return nil // expired: not copied
		}
		if err != nil {
			return fmt.Errorf("record %s/%s: %w", bucket, k, err)
		}
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("decode record %s/%s: %w", bucket, k, err)
		}
		*out = append(*out, v)
		return nil
	})
}

// Import writes every record of snap in one transaction, replacing records
// with the same ids.
func (s *Store) Import(ctx context.Context, snap store.Snapshot) error {
	return s.update(ctx, "import", func(tx *bbolt.Tx) error {
		if snap.Keys != nil {
			data, err := json.Marshal(snap.Keys)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketKeys).Put(keyKeys, data); err != nil {
				return err
			}
		}
		for name, v := range snap.Secrets {
			if name == "" || len(v) == 0 {
				return fmt.Errorf("secret %q is empty", name)
			}
			if err := tx.Bucket(bucketSecrets).Put([]byte(name), bytes.Clone(v)); err != nil {
				return err
			}
		}
		for _, r := range snap.Sessions {
			if err := importRecord(tx, bucketSessions, r); err != nil {
				return err
			}
		}
		for _, r := range snap.AuthCodes {
			if err := importRecord(tx, bucketCodes, r); err != nil {
				return err
			}
		}
		for _, r := range snap.RefreshFamilies {
			if err := importRecord(tx, bucketFamilies, r); err != nil {
				return err
			}
		}
		for _, r := range snap.DeviceCodes {
			if err := importRecord(tx, bucketDevices, r); err != nil {
				return err
			}
			idx, err := json.Marshal(map[string]any{"id": r.UserCode, "device_code_id": r.ID, "expires": r.Expires})
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketUserCodes).Put([]byte(r.UserCode), idx); err != nil {
				return err
			}
		}
		for _, r := range snap.Revocations {
			if err := importRecord(tx, bucketRevocations, r); err != nil {
				return err
			}
		}
		for _, r := range snap.Deliveries {
			if err := importRecord(tx, bucketDeliveries, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// importRecord puts v, a record with an id, into bucket.
func importRecord(tx *bbolt.Tx, bucket []byte, v any) error {
	data, h, err := encode(v)
	if err != nil {
		return err
	}
	if h.ID == "" {
		return fmt.Errorf("a record of %s has no id", bucket)
	}
	return tx.Bucket(bucket).Put([]byte(h.ID), data)
}

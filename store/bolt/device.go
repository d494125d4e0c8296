package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/ghbroker/ghbroker/store"
)

// The user-code index (bucketUserCodes) maps a user code to
// {"id": user code, "device_code_id": …, "expires": …}: it expires with the
// device code it points to, so that Sweep deletes both.

// CreateDeviceCode stores a new device code and its user-code index entry
// in one transaction.
func (s *Store) CreateDeviceCode(ctx context.Context, v store.DeviceCode) error {
	const op = "create device code"
	if v.ID == "" || v.UserCode == "" {
		return fmt.Errorf("store/bolt: %s: empty id or user code", op)
	}
	data, _, err := encode(v)
	if err != nil {
		return fmt.Errorf("store/bolt: %s: %w", op, err)
	}
	idx, err := json.Marshal(map[string]any{"id": v.UserCode, "device_code_id": v.ID, "expires": v.Expires})
	if err != nil {
		return fmt.Errorf("store/bolt: %s: %w", op, err)
	}
	now := s.now()
	return s.update(ctx, op, func(tx *bbolt.Tx) error {
		codes, users := tx.Bucket(bucketDevices), tx.Bucket(bucketUserCodes)
		for _, c := range []struct {
			b  *bbolt.Bucket
			id string
		}{{codes, v.ID}, {users, v.UserCode}} {
			switch _, err := live(c.b, c.id, now); {
			case err == nil:
				return store.ErrAlreadyExists
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		if err := codes.Put([]byte(v.ID), data); err != nil {
			return err
		}
		return users.Put([]byte(v.UserCode), idx)
	})
}

// GetDeviceCodeByUserCode returns the live device code whose user code is
// userCode.
func (s *Store) GetDeviceCodeByUserCode(ctx context.Context, userCode string) (store.DeviceCode, error) {
	var v store.DeviceCode
	now := s.now()
	err := s.view(ctx, "get device code by user code", func(tx *bbolt.Tx) error {
		raw, err := live(tx.Bucket(bucketUserCodes), userCode, now)
		if err != nil {
			return err
		}
		var e struct {
			DeviceCodeID string `json:"device_code_id"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("decode record: %w", err)
		}
		data, err := live(tx.Bucket(bucketDevices), e.DeviceCodeID, now)
		if err != nil {
			return err
		}
		return json.Unmarshal(data, &v)
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.DeviceCode{}, store.ErrNotFound
	}
	if err != nil {
		return store.DeviceCode{}, err
	}
	return v, nil
}

// errUserCodeChanged refuses an update that would leave the user-code
// index pointing wrong: the user code and the expiry are fixed at creation.
var errUserCodeChanged = errors.New("store/bolt: the update changed the user code or the expiry")

// UpdateDeviceCode runs fn on the live device code id and stores its
// result, in one transaction.
func (s *Store) UpdateDeviceCode(ctx context.Context, id string, fn func(store.DeviceCode) (store.DeviceCode, error)) error {
	return update(ctx, s, bucketDevices, id, func(old store.DeviceCode) (store.DeviceCode, error) {
		v, err := fn(old)
		if err == nil && (v.UserCode != old.UserCode || !v.Expires.Equal(old.Expires)) {
			return old, errUserCodeChanged
		}
		return v, err
	})
}

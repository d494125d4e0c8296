package etcd

import (
	"context"
	"fmt"
	"time"

	"github.com/ghbroker/ghbroker/store"
)

// userCodeEntry is the user-code index: it lives on the device code's
// lease, so that both go together.
type userCodeEntry struct {
	ID           string    `json:"id"` // the user code
	DeviceCodeID string    `json:"device_code_id"`
	Expires      time.Time `json:"expires"`
}

// CreateDeviceCode stores a new device code and its user-code index entry
// in one transaction, on one lease.
func (s *Store) CreateDeviceCode(ctx context.Context, v store.DeviceCode) error {
	const op = "create device code"
	if v.ID == "" || v.UserCode == "" {
		return fmt.Errorf("store/etcd: %s: %w", op, invalid("empty id or user code"))
	}
	data, _, err := encode(v)
	if err != nil {
		return fmt.Errorf("store/etcd: %s: %w", op, err)
	}
	idx, _, err := encode(userCodeEntry{ID: v.UserCode, DeviceCodeID: v.ID, Expires: v.Expires})
	if err != nil {
		return fmt.Errorf("store/etcd: %s: %w", op, err)
	}
	return s.do(ctx, op, func(ctx context.Context) error {
		return s.createAll(ctx,
			[]string{s.key(kindDevices, v.ID), s.key(kindUserCodes, v.UserCode)},
			[]string{data, idx}, v.Expires)
	})
}

// GetDeviceCodeByUserCode returns the live device code whose user code is
// userCode.
func (s *Store) GetDeviceCodeByUserCode(ctx context.Context, userCode string) (store.DeviceCode, error) {
	var v store.DeviceCode
	err := s.do(ctx, "get device code by user code", func(ctx context.Context) error {
		kv, err := s.getKV(ctx, s.key(kindUserCodes, userCode))
		if err != nil {
			return err
		}
		var e userCodeEntry
		if _, err := s.live(kv, &e); err != nil {
			return err
		}
		if kv, err = s.getKV(ctx, s.key(kindDevices, e.DeviceCodeID)); err != nil {
			return err
		}
		_, err = s.live(kv, &v)
		return err
	})
	if err != nil {
		return store.DeviceCode{}, err
	}
	return v, nil
}

// UpdateDeviceCode runs fn on the live device code id and stores its
// result by compare-and-swap; fn may run more than once. The user code and
// the expiry are fixed at creation (the index and the lease depend on
// them).
func (s *Store) UpdateDeviceCode(ctx context.Context, id string, fn func(store.DeviceCode) (store.DeviceCode, error)) error {
	return update(ctx, s, kindDevices, id, func(old store.DeviceCode) (store.DeviceCode, error) {
		v, err := fn(old)
		if err != nil {
			return v, err
		}
		if v.UserCode != old.UserCode || !v.Expires.Equal(old.Expires) {
			return old, invalid("the update changed the user code or the expiry")
		}
		return v, nil
	})
}

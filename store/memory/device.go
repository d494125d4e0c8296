package memory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ghbroker/ghbroker/store"
)

// CreateDeviceCode stores a new device code and its user-code index entry.
func (s *Store) CreateDeviceCode(ctx context.Context, v store.DeviceCode) error {
	data, h, err := encode(deviceCodes, v)
	if err != nil {
		return err
	}
	if h.ID == "" || v.UserCode == "" {
		return fmt.Errorf("store/memory: create %s: empty id or user code", deviceCodes)
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	_, idTaken := s.live(deviceCodes, h.ID)
	_, userTaken := s.live(userCodes, v.UserCode)
	if idTaken || userTaken {
		return fmt.Errorf("store/memory: create %s: %w", deviceCodes, store.ErrAlreadyExists)
	}
	s.tables[deviceCodes][h.ID] = row{data: data, expires: h.Expires}
	s.tables[userCodes][v.UserCode] = row{data: []byte(h.ID), expires: h.Expires}
	return nil
}

// GetDeviceCodeByUserCode returns the live device code whose user code is
// userCode.
func (s *Store) GetDeviceCodeByUserCode(ctx context.Context, userCode string) (store.DeviceCode, error) {
	var v store.DeviceCode
	if err := s.lock(ctx); err != nil {
		return v, err
	}
	defer s.mu.Unlock()
	idx, ok := s.live(userCodes, userCode)
	if !ok {
		return v, fmt.Errorf("store/memory: get %s: %w", userCodes, store.ErrNotFound)
	}
	r, ok := s.live(deviceCodes, string(idx.data))
	if !ok {
		return v, fmt.Errorf("store/memory: get %s: %w", deviceCodes, store.ErrNotFound)
	}
	if err := json.Unmarshal(r.data, &v); err != nil {
		return v, fmt.Errorf("store/memory: decode %s: %w", deviceCodes, err)
	}
	return v, nil
}

// errUserCodeChanged refuses an update that would leave the user-code
// index pointing wrong: the user code and the expiry are fixed at creation.
var errUserCodeChanged = errors.New("store/memory: the update changed the user code or the expiry")

// UpdateDeviceCode runs fn on the live device code id and stores its
// result.
func (s *Store) UpdateDeviceCode(ctx context.Context, id string, fn func(store.DeviceCode) (store.DeviceCode, error)) error {
	return update(ctx, s, deviceCodes, id, func(old store.DeviceCode) (store.DeviceCode, error) {
		v, err := fn(old)
		if err == nil && (v.UserCode != old.UserCode || !v.Expires.Equal(old.Expires)) {
			return old, errUserCodeChanged
		}
		return v, err
	})
}

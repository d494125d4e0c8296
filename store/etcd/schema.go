package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Opening a prefix: the schema key and the check for foreign keys.

// initialise checks the prefix, writing the schema version into an empty
// one.
func (s *Store) initialise(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	unreachable := func(err error) error {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return fmt.Errorf("store/etcd: open: %w", err)
		}
		return &UnreachableError{Endpoints: s.endpoints, Timeout: timeout, Err: err}
	}
	key := s.schemaKey()
	want, _ := json.Marshal(schema{Version: SchemaVersion, Kinds: recordKinds})
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpGet(s.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(1))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return unreachable(err)
	}
	if resp.Succeeded {
		// No schema key: the prefix must be empty.
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			return &ForeignKeyError{Prefix: s.prefix, Key: string(kvs[0].Key)}
		}
		put, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(want))).
			Commit()
		if err != nil {
			return unreachable(err)
		}
		if put.Succeeded {
			s.log.Info("etcd store initialised", "prefix", s.prefix, "schema_version", SchemaVersion)
			return nil
		}
		// Another replica initialised it meanwhile: check what it wrote.
		return s.initialise(ctx, timeout)
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return s.initialise(ctx, timeout)
	}
	v, err := parseSchema(kvs[0].Value)
	if err != nil {
		return fmt.Errorf("store/etcd: etcd prefix %s: the schema key %s is not ghbroker's: %w", s.prefix, key, err)
	}
	if v.Version > SchemaVersion {
		return &SchemaVersionError{Prefix: s.prefix, Version: v.Version}
	}
	for _, k := range v.Kinds {
		if !slices.Contains(recordKinds, k) {
			s.laterKinds = append(s.laterKinds, k) // a newer ghbroker's
		}
	}
	if err := s.listKinds(ctx, kvs[0], v); err != nil {
		return fmt.Errorf("store/etcd: etcd prefix %s: listing this ghbroker's record kinds in %s: %w", s.prefix, key, err)
	}
	// Look at the first keys for foreign ones; a full scan would cost
	// as much as the store is large.
	keys, err := s.cli.Get(ctx, s.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(1000))
	if err != nil {
		return unreachable(err)
	}
	for _, kv := range keys.Kvs {
		if !s.ours(string(kv.Key)) {
			return &ForeignKeyError{Prefix: s.prefix, Key: string(kv.Key)}
		}
	}
	return nil
}

// listKinds adds this ghbroker's record kinds to the schema key when it
// lacks some (a prefix written by an older ghbroker), by compare-and-swap;
// losing to another replica's update is fine once that lists them.
func (s *Store) listKinds(ctx context.Context, kv *mvccpb.KeyValue, v schema) error {
	for range 5 {
		missing := false
		for _, k := range recordKinds {
			if !slices.Contains(v.Kinds, k) {
				v.Kinds, missing = append(v.Kinds, k), true
			}
		}
		if !missing {
			return nil
		}
		slices.Sort(v.Kinds)
		data, _ := json.Marshal(v)
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)).
			Then(clientv3.OpPut(string(kv.Key), string(data))).
			Else(clientv3.OpGet(string(kv.Key))).
			Commit()
		if err != nil {
			return err
		}
		if resp.Succeeded {
			return nil
		}
		if kv = elseKV(resp, 0); kv == nil {
			return errors.New("the schema key vanished")
		}
		if v, err = parseSchema(kv.Value); err != nil {
			return err
		}
	}
	return errors.New("the schema key keeps changing")
}

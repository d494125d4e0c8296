package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ghbroker/ghbroker/store"
)

var (
	_ store.Exporter = (*Store)(nil)
	_ store.Importer = (*Store)(nil)
)

// exportPage is how many keys one range request of Export reads.
const exportPage = 500

// importBatch is how many puts one transaction of Import holds (etcd's
// default limit is 128 operations per transaction).
const importBatch = 100

// Export returns every live record, read at one revision. It is not bounded
// by the request timeout (a large store takes longer), only by ctx.
func (s *Store) Export(ctx context.Context) (store.Snapshot, error) {
	if s.closed.Load() {
		return store.Snapshot{}, errClosed
	}
	snap := store.Snapshot{Secrets: map[string][]byte{}}
	var rev int64
	scan := func(kind string, each func(raw []byte) error) error {
		from, end := s.prefix+kind+"/", clientv3.GetPrefixRangeEnd(s.prefix+kind+"/")
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(exportPage)}
			if rev != 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			resp, err := s.cli.Get(ctx, from, opts...)
			if err != nil {
				return err
			}
			if rev == 0 {
				rev = resp.Header.Revision
			}
			for _, kv := range resp.Kvs {
				if err := each(kv.Value); err != nil {
					return err
				}
			}
			if !resp.More || len(resp.Kvs) == 0 {
				return nil
			}
			from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
	err := func() error {
		resp, err := s.cli.Get(ctx, s.keysKey())
		if err != nil {
			return err
		}
		rev = resp.Header.Revision
		if kv := first(resp.Kvs); kv != nil {
			var k store.Keys
			if err := decodeKeys(kv.Value, &k); err != nil {
				return err
			}
			snap.Keys = &k
		}
		secretsPrefix := s.prefix + kindSecrets + "/"
		resp, err = s.cli.Get(ctx, secretsPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			name, err := url.PathUnescape(strings.TrimPrefix(string(kv.Key), secretsPrefix))
			if err != nil {
				return invalid("secret key %q: %v", kv.Key, err)
			}
			if snap.Secrets[name], err = decodeSecret(kv.Value); err != nil {
				return err
			}
		}
		for _, k := range []struct {
			kind string
			add  func(raw []byte) error
		}{
			{kindSessions, collect(s, &snap.Sessions)},
			{kindCodes, collect(s, &snap.AuthCodes)},
			{kindFamilies, collect(s, &snap.RefreshFamilies)},
			{kindDevices, collect(s, &snap.DeviceCodes)},
			{kindRevocations, collect(s, &snap.Revocations)},
			{kindDeliveries, collect(s, &snap.Deliveries)},
		} {
			if err := scan(k.kind, k.add); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		out, _ := s.translate(ctx, "export", err)
		return store.Snapshot{}, out
	}
	return snap, nil
}

// collect returns a function that appends each live record to out.
func collect[T any](s *Store, out *[]T) func(raw []byte) error {
	return func(raw []byte) error {
		var v T
		h, err := decode(raw, &v)
		if err != nil {
			return err
		}
		if !h.Expires.Before(s.now()) {
			*out = append(*out, v)
		}
		return nil
	}
}

// Import writes every record of snap, replacing records with the same ids.
// Each expiring record goes on the pooled lease of its expiry (see
// leases.go; a device code shares its lease with its user-code index
// entry). It is not one transaction: an interrupted import leaves some
// records written, and running it again completes it.
func (s *Store) Import(ctx context.Context, snap store.Snapshot) error {
	if s.closed.Load() {
		return errClosed
	}
	// A batch of puts is written in one transaction; its leases are
	// taken when it is written, so that a lease revoked meanwhile is
	// replaced (once) rather than failing the import.
	type puts struct {
		keys, values []string
		// expires, when set, puts the keys on one pooled lease.
		expires time.Time
	}
	var batch []puts
	ops := 0
	flush := func() error {
		defer func() { batch, ops = batch[:0], 0 }()
		if len(batch) == 0 {
			return nil
		}
		leases := make([]callLease, len(batch))
		for {
			var txn []clientv3.Op
			for i, p := range batch {
				var opts []clientv3.OpOption
				if !p.expires.IsZero() {
					leases[i].s, leases[i].n = s, len(p.keys)
					id, err := leases[i].get(ctx, p.expires)
					if err != nil {
						return err
					}
					opts = append(opts, clientv3.WithLease(id))
				}
				for j, k := range p.keys {
					txn = append(txn, clientv3.OpPut(k, p.values[j], opts...))
				}
			}
			_, err := s.cli.Txn(ctx).Then(txn...).Commit()
			if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
				return err
			}
			// Which lease is gone, etcd does not say: replace them all.
			again := false
			for i := range leases {
				again = leases[i].gone(err) || again
			}
			if !again {
				return err
			}
		}
	}
	add := func(p puts) error {
		if ops+len(p.keys) > importBatch {
			if err := flush(); err != nil {
				return err
			}
		}
		batch, ops = append(batch, p), ops+len(p.keys)
		return nil
	}
	type kv struct{ key, value string }
	leased := func(kind string, v any, extra ...kv) error {
		data, h, err := encode(v)
		if err != nil {
			return err
		}
		if h.ID == "" {
			return invalid("a record of %s has no id", kind)
		}
		if h.Expires.Before(s.now()) {
			return nil
		}
		p := puts{keys: []string{s.key(kind, h.ID)}, values: []string{data}, expires: h.Expires}
		for _, e := range extra {
			p.keys, p.values = append(p.keys, e.key), append(p.values, e.value)
		}
		return add(p)
	}
	plain := func(key, value string) error {
		return add(puts{keys: []string{key}, values: []string{value}})
	}
	err := func() error {
		if snap.Keys != nil {
			r, err := json.Marshal(snap.Keys)
			if err != nil {
				return invalid("encode keys: %v", err)
			}
			data, _ := json.Marshal(envelope{V: recordVersion, R: r})
			if err := plain(s.keysKey(), string(data)); err != nil {
				return err
			}
		}
		for name, v := range snap.Secrets {
			if name == "" || len(v) == 0 {
				return invalid("secret %q is empty", name)
			}
			r, _ := json.Marshal(v)
			data, _ := json.Marshal(envelope{V: recordVersion, R: r})
			if err := plain(s.key(kindSecrets, name), string(data)); err != nil {
				return err
			}
		}
		for _, r := range snap.Sessions {
			if err := leased(kindSessions, r); err != nil {
				return err
			}
		}
		for _, r := range snap.AuthCodes {
			if err := leased(kindCodes, r); err != nil {
				return err
			}
		}
		for _, r := range snap.RefreshFamilies {
			if err := leased(kindFamilies, r); err != nil {
				return err
			}
		}
		for _, r := range snap.DeviceCodes {
			idx, _, err := encode(userCodeEntry{ID: r.UserCode, DeviceCodeID: r.ID, Expires: r.Expires})
			if err != nil {
				return err
			}
			if r.UserCode == "" {
				return errors.New("a device code has no user code")
			}
			if err := leased(kindDevices, r, kv{s.key(kindUserCodes, r.UserCode), idx}); err != nil {
				return err
			}
		}
		// Replicas watching the revocations see each entry put here.
		for _, r := range snap.Revocations {
			if err := leased(kindRevocations, r); err != nil {
				return err
			}
		}
		for _, r := range snap.Deliveries {
			if err := leased(kindDeliveries, r); err != nil {
				return err
			}
		}
		return flush()
	}()
	if err != nil {
		out, _ := s.translate(ctx, "import", err)
		return out
	}
	return nil
}

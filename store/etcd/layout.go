package etcd

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The layout under the prefix P:
//
//	P schema                  {"version":1,"kinds":[…]}: the record kinds in use
//	P keys                    the key set (no lease)
//	P secrets/NAME            a secret (no lease)
//	P sessions/ID             a session         (lease: shared, see leases.go)
//	P codes/ID                an authorization code
//	P families/ID             a refresh family
//	P devices/ID              a device code
//	P user_codes/USER_CODE    {"device_code_id":…}, on the device code's lease
//	P deliveries/ID           a webhook delivery id
//	P revocations/ID          a revocation entry
//	P counters/ID             a store counter   (lease: shared; counters.go)
//
// Ids and names are path-escaped. Every value but the schema key is an
// envelope {"v":1,"r":RECORD}, so that a later layout can change a kind's
// encoding without guessing; an expiring record's envelope also holds a
// nonce, "n".

// Kinds of record, each a directory under the prefix.
const (
	kindSessions  = "sessions"
	kindCodes     = "codes"
	kindFamilies  = "families"
	kindDevices   = "devices"
	kindUserCodes = "user_codes"
	kindSecrets   = "secrets"
	// kindDeliveries are GitHub webhook delivery ids, on leases.
	kindDeliveries = "deliveries"
	// kindRevocations is the revocation set, one entry a key, on leases.
	kindRevocations = "revocations"
	// kindCounters are store.Counter records, each on its own lease.
	kindCounters = "counters"
)

// recordVersion is the envelope version this package writes.
const recordVersion = 1

func (s *Store) schemaKey() string { return s.prefix + "schema" }

func (s *Store) keysKey() string { return s.prefix + "keys" }

// key returns the key of record id of kind.
func (s *Store) key(kind, id string) string {
	return s.prefix + kind + "/" + url.PathEscape(id)
}

// ours reports whether key belongs to the layout.
func (s *Store) ours(key string) bool {
	rest, ok := strings.CutPrefix(key, s.prefix)
	if !ok {
		return false
	}
	if rest == "schema" || rest == "keys" {
		return true
	}
	kind, id, ok := strings.Cut(rest, "/")
	if !ok || id == "" {
		return false
	}
	return slices.Contains(recordKinds, kind) || slices.Contains(s.laterKinds, kind)
}

// recordKinds are the kinds of record this ghbroker writes. The schema key
// lists them, so that an older ghbroker of the same schema version takes
// the kinds a newer one added for ghbroker's, not for another program's.
var recordKinds = []string{kindCodes, kindCounters, kindDeliveries, kindDevices, kindFamilies, kindRevocations, kindSecrets, kindSessions, kindUserCodes}

// schema is the schema key's value.
type schema struct {
	Version int `json:"version"`
	// Kinds are the record kinds in use under the prefix: every kind a
	// ghbroker that opened it writes.
	Kinds []string `json:"kinds,omitempty"`
}

// parseSchema reads a schema key's value.
func parseSchema(raw []byte) (schema, error) {
	var v struct {
		Version *int     `json:"version"`
		Kinds   []string `json:"kinds"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return schema{}, err
	}
	if v.Version == nil {
		return schema{}, errors.New(`no "version" member`)
	}
	return schema{Version: *v.Version, Kinds: v.Kinds}, nil
}

// envelope wraps every stored record.
type envelope struct {
	V int             `json:"v"`
	R json.RawMessage `json:"r"`
	// N is a random nonce, new for every write of a record, so that a
	// writer whose answer was lost recognises its own value when it reads
	// the key back: records share leases (see leases.go), so the lease no
	// longer tells, and two writers may store the same record (two
	// replicas recording one webhook delivery). Readers ignore it.
	N string `json:"n,omitempty"`
}

// nonce returns 72 random bits, base64url: the randomness of this package.
func nonce() string {
	var b [9]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// header is the part of every expiring record the store reads itself.
type header struct {
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// encode returns v in its envelope, with a fresh nonce, and its header.
func encode(v any) (string, header, error) {
	r, err := json.Marshal(v)
	if err != nil {
		return "", header{}, invalid("encode record: %v", err)
	}
	var h header
	if err := json.Unmarshal(r, &h); err != nil {
		return "", header{}, invalid("encode record: %v", err)
	}
	data, err := json.Marshal(envelope{V: recordVersion, R: r, N: nonce()})
	if err != nil {
		return "", header{}, invalid("encode record: %v", err)
	}
	return string(data), h, nil
}

// decode unwraps a stored value into v and returns its header.
func decode(raw []byte, v any) (header, error) {
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return header{}, invalid("decode record: %v", err)
	}
	if e.V != recordVersion {
		return header{}, invalid("decode record: envelope version %d, want %d", e.V, recordVersion)
	}
	var h header
	if err := json.Unmarshal(e.R, &h); err != nil {
		return header{}, invalid("decode record: %v", err)
	}
	if v != nil {
		if err := json.Unmarshal(e.R, v); err != nil {
			return header{}, invalid("decode record: %v", err)
		}
	}
	return h, nil
}

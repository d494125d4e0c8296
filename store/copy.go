package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Snapshot is every live record of a store, for moving a broker from one
// engine to another (`ghbroker store copy`) without signing anyone out.
type Snapshot struct {
	// Keys is the key set; nil when the store has none.
	Keys *Keys
	// Secrets maps each secret's name to its bytes.
	Secrets map[string][]byte
	// The live expiring records of each kind.
	Sessions        []Session
	AuthCodes       []AuthCode
	RefreshFamilies []RefreshFamily
	DeviceCodes     []DeviceCode
	// Revocations are the revocation set's live entries: without them a
	// copy would make revoked tokens valid again until they expire.
	Revocations []Revocation
	// Deliveries are the webhook deliveries already applied, so that
	// GitHub's redeliveries stay de-duplicated across the move.
	Deliveries []Delivery
}

// Len is how many records s holds (the key set counts as one).
func (s Snapshot) Len() int {
	n := len(s.Secrets) + len(s.Sessions) + len(s.AuthCodes) + len(s.RefreshFamilies) + len(s.DeviceCodes) +
		len(s.Revocations) + len(s.Deliveries)
	if s.Keys != nil {
		n++
	}
	return n
}

// Summary says what s holds, for people.
func (s Snapshot) Summary() string {
	keys := 0
	if s.Keys != nil {
		keys = 1
	}
	return fmt.Sprintf("key set %d, secrets %d, sessions %d, refresh families %d, authorization codes %d, device codes %d, revocations %d, webhook deliveries %d",
		keys, len(s.Secrets), len(s.Sessions), len(s.RefreshFamilies), len(s.AuthCodes), len(s.DeviceCodes), len(s.Revocations), len(s.Deliveries))
}

// Exporter is an engine that reads every live record at once, as of one
// instant.
type Exporter interface {
	Export(ctx context.Context) (Snapshot, error)
}

// Importer is an engine that writes a snapshot's records, replacing any
// record with the same id (name, for secrets), and keeping each record's
// expiry.
type Importer interface {
	Import(ctx context.Context, s Snapshot) error
}

// ConflictError means a copy's target holds records that the source does
// not hold, or holds differently; copying would overwrite or mix them.
type ConflictError struct {
	// Example names one such record.
	Example string
	// Target summarises what the target holds.
	Target string
}

// Error implements error.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("the target store is not empty and differs from the source (%s; target holds %s)", e.Example, e.Target)
}

// Copy writes every live record of from into to. It refuses, with a
// *ConflictError, a target that holds a record the source does not hold
// identically, unless force is set (the target's records with the source's
// ids are then replaced; others stay). A target that holds exactly a
// subset of the source (a copy made before, or one interrupted) is no
// conflict: copying again is harmless. It returns what it copied.
func Copy(ctx context.Context, from Exporter, to interface {
	Exporter
	Importer
}, force bool) (Snapshot, error) {
	src, err := from.Export(ctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("store: copy: read the source: %w", err)
	}
	if !force {
		dst, err := to.Export(ctx)
		if err != nil {
			return Snapshot{}, fmt.Errorf("store: copy: read the target: %w", err)
		}
		if what := firstDifference(src, dst); what != "" {
			return Snapshot{}, &ConflictError{Example: what, Target: dst.Summary()}
		}
	}
	if err := to.Import(ctx, src); err != nil {
		return Snapshot{}, fmt.Errorf("store: copy: write the target: %w", err)
	}
	return src, nil
}

// firstDifference names a record of dst that src does not hold
// identically, or returns "".
func firstDifference(src, dst Snapshot) string {
	if dst.Keys != nil && (src.Keys == nil || !sameJSON(*src.Keys, *dst.Keys)) {
		return "its key set differs"
	}
	for _, name := range slices.Sorted(maps.Keys(dst.Secrets)) {
		if !bytes.Equal(src.Secrets[name], dst.Secrets[name]) {
			return fmt.Sprintf("secret %q differs", name)
		}
	}
	if id := missing(src.Sessions, dst.Sessions, func(s Session) string { return s.ID }); id != "" {
		return "session " + id + " differs"
	}
	if id := missing(src.RefreshFamilies, dst.RefreshFamilies, func(f RefreshFamily) string { return f.ID }); id != "" {
		return "refresh family " + id + " differs"
	}
	if id := missing(src.AuthCodes, dst.AuthCodes, func(c AuthCode) string { return c.ID }); id != "" {
		return "an authorization code differs"
	}
	if id := missing(src.DeviceCodes, dst.DeviceCodes, func(c DeviceCode) string { return c.ID }); id != "" {
		return "a device code differs"
	}
	if id := missing(src.Revocations, dst.Revocations, func(r Revocation) string { return r.ID }); id != "" {
		return "revocation " + id + " differs"
	}
	if id := missing(src.Deliveries, dst.Deliveries, func(d Delivery) string { return d.ID }); id != "" {
		return "webhook delivery " + id + " differs"
	}
	return ""
}

// missing returns the id of a record of dst that src lacks or holds
// differently, or "".
func missing[T any](src, dst []T, id func(T) string) string {
	have := map[string]T{}
	for _, r := range src {
		have[id(r)] = r
	}
	for _, r := range dst {
		if s, ok := have[id(r)]; !ok || !sameJSON(s, r) {
			return id(r)
		}
	}
	return ""
}

// sameJSON reports whether a and b encode alike, the way every engine
// stores records.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

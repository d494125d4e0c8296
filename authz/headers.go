package authz

import (
	"hash/maphash"
	"net/http"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/ghbroker/ghbroker/claims"
)

// allowHeaders are the header values of an allowed check, ready to put in
// a response without allocating: each is a one-element slice shared by
// every response for the same verified token (net/http only reads them; an
// Add would copy, since len == cap).
type allowHeaders struct {
	claims *claims.Claims
	// tokenLen and tokenTail identify the token the headers were built
	// for, beside claims (see headerMemo.get).
	tokenLen  int
	tokenTail string

	user, email, groups, truncated []string
	authorization, remove          []string
}

// Canonical header keys, written straight into the header map so that
// net/http does not canonicalise them on every response.
var (
	keyCacheControl  = http.CanonicalHeaderKey("Cache-Control")
	keyAuthorization = http.CanonicalHeaderKey("Authorization")
	keyUser          = http.CanonicalHeaderKey(HeaderUser)
	keyEmail         = http.CanonicalHeaderKey(HeaderEmail)
	keyGroups        = http.CanonicalHeaderKey(HeaderGroups)
	keyTruncated     = http.CanonicalHeaderKey(HeaderGroupsTruncated)
	keyRemove        = http.CanonicalHeaderKey(envoyHeadersToRemove)
	valNoStore       = []string{"no-store"}
)

// removeLists[mask] is the X-Envoy-Auth-Headers-To-Remove value for the
// identity headers whose bit is set in mask (user 1, email 2, groups 4,
// truncated 8): precomputed, lower-case, for every combination.
var removeLists = func() (out [16][]string) {
	names := [4]string{HeaderUser, HeaderEmail, HeaderGroups, HeaderGroupsTruncated}
	for mask := 1; mask < 16; mask++ {
		var parts []string
		for i, n := range names {
			if mask&(1<<i) != 0 {
				parts = append(parts, strings.ToLower(n))
			}
		}
		out[mask] = []string{strings.Join(parts, ", ")}
	}
	return out
}()

// newAllowHeaders builds the headers for c. authorization, when the token
// came in the request's own Authorization header, is that header's value,
// reused as is; otherwise it is built from token.
//
// With forward unset (authz.forward_token: false) no Authorization is
// written: the request's own, if any, goes on as it came.
func newAllowHeaders(c *claims.Claims, token string, authorization []string, forward bool) *allowHeaders {
	id := identityOf(c)
	switch {
	case !forward:
		authorization = nil
	case authorization == nil:
		authorization = []string{"Bearer " + token}
	}
	// token may be a slice of a much larger header (a Cookie line of up to
	// 64 KiB): the memo keeps only its own bytes.
	a := &allowHeaders{claims: c, tokenLen: len(token), tokenTail: strings.Clone(tailOf(token)), authorization: authorization}
	mask := 0
	for i, kv := range [...]struct {
		v   string
		dst *[]string
	}{{id.user, &a.user}, {id.email, &a.email}, {id.groups, &a.groups}, {truncatedValue(id.truncated), &a.truncated}} {
		if kv.v == "" {
			mask |= 1 << i
			continue
		}
		*kv.dst = []string{kv.v}
	}
	a.remove = removeLists[mask]
	return a
}

// set writes the headers; withRemove adds Envoy's removal list (the
// Ambassador dialect only).
func (a *allowHeaders) set(hdr http.Header, withRemove bool) {
	for _, kv := range [...]struct {
		k string
		v []string
	}{{keyUser, a.user}, {keyEmail, a.email}, {keyGroups, a.groups}, {keyTruncated, a.truncated}} {
		if kv.v != nil {
			hdr[kv.k] = kv.v
		}
	}
	if a.authorization != nil {
		hdr[keyAuthorization] = a.authorization
	}
	if withRemove && a.remove != nil {
		hdr[keyRemove] = a.remove
	}
}

// headerMemo is a fixed-size, direct-mapped memo of allowHeaders keyed by
// the verified claims (stable pointers for tokens served from the
// verifier's cache): repeated checks of one token build their headers once.
// It never grows; a collision just rebuilds.
//
// A hit needs the same claims pointer and a token of the same length that
// ends in the same memoTokenTail bytes. The claims pointer alone names one
// verification of one token: the verifier's cache entry, which compared
// the whole token, or a fresh verification, whose claims no memo entry can
// hold. The tail (a signature's last bytes: different for any two tokens
// that verify) guards against a Verifier that hands out one Claims for
// two tokens, at the cost of comparing a few bytes instead of a whole
// token of about 1 KB that is cold in the cache at every request.
type headerMemo struct {
	seed    maphash.Seed
	slots   [1024]atomic.Pointer[allowHeaders]
	noToken bool // authz.forward_token: false
}

func newHeaderMemo() *headerMemo { return &headerMemo{seed: maphash.MakeSeed()} }

func (m *headerMemo) get(c *claims.Claims, token string, authorization []string) *allowHeaders {
	if m == nil {
		return newAllowHeaders(c, token, authorization, true)
	}
	p := uintptr(unsafe.Pointer(c))
	slot := &m.slots[maphash.Comparable(m.seed, p)%uint64(len(m.slots))]
	if a := slot.Load(); a != nil && a.claims == c && a.tokenLen == len(token) && a.tokenTail == tailOf(token) {
		return a
	}
	a := newAllowHeaders(c, token, authorization, !m.noToken)
	slot.Store(a)
	return a
}

// memoTokenTail is how many trailing bytes of a token identify it in the
// header memo beside its claims: 32 base64url characters, 192 bits of
// signature.
const memoTokenTail = 32

func tailOf(token string) string { return token[max(0, len(token)-memoTokenTail):] }

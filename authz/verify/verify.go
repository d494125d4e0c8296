package verify

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/claims"
)

// KeySet gives the public keys that verify tokens, by "kid". It is read on
// every check, so it must answer from memory without blocking:
// *keys.Manager (in the broker's process) and *Remote (in a stateless
// authz replica) implement it. A key verifies only tokens whose
// "alg" equals its own: a key without "alg" verifies nothing.
type KeySet interface {
	// PublicKey returns the published public key with kid, and whether
	// there is one.
	PublicKey(kid string) (jose.JSONWebKey, bool)
}

// snapshotter is a KeySet that tells when its keys change
// (keys.Manager.Snapshot): a cached token's key is then looked up again
// only after a change.
type snapshotter interface {
	Snapshot() any
}

// Defaults of Options.
const (
	// defaultLeeway is the clock skew tolerated on "exp", "nbf" and "iat".
	defaultLeeway = 30 * time.Second
	// defaultCacheSize is the number of verified tokens kept by default.
	defaultCacheSize = 16384
	// defaultMaxTokenBytes is the longest token parsed by default.
	defaultMaxTokenBytes = 16 << 10
)

// defaultAlgs are the algorithms package keys signs with.
func defaultAlgs() []string {
	return []string{string(jose.RS256), string(jose.ES256), string(jose.EdDSA)}
}

// Options configure a Verifier. Issuer and Keys are required; the
// zero value of every other field has a sensible default.
type Options struct {
	// Issuer is our issuer URL: a token's "iss" must equal it byte for
	// byte, and session and access tokens must name it in "aud".
	Issuer string
	// Keys gives the public keys, by kid.
	Keys KeySet
	// Algorithms are the accepted "alg" values. Default RS256, ES256 and
	// EdDSA. Only asymmetric algorithms are allowed: "none" and HS* are
	// refused by New.
	Algorithms []string
	// IDTokenAudiences lists the client ids whose ID tokens Verify
	// accepts (the configuration's authz.id_token_audiences). Empty by
	// default: every ID token is refused with ErrAudience.
	IDTokenAudiences []string
	// Leeway is the clock skew tolerated on "exp", "nbf" and "iat".
	// Zero means 30s; negative is an error.
	Leeway time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// CacheSize is the maximum number of verified tokens remembered, so
	// that a repeated check costs a map lookup. Zero means 16384;
	// negative disables the cache. Entries are also charged their token
	// and claims bytes against a budget of CacheSize × 4 KiB (64 MiB by
	// default), so that large tokens cannot grow it further.
	CacheSize int
	// MaxTokenBytes is the longest token parsed; a longer one is
	// ErrMalformed without parsing. Zero means 16 KiB.
	MaxTokenBytes int
}

// Verifier checks compact JWS tokens issued by our broker: signature with
// an in-memory key, "typ", "iss", "aud", "exp", "nbf" and "iat". It never
// does I/O and is safe for concurrent use. Successful checks are cached
// (see Options.CacheSize), so that a token seen again costs a map
// lookup until it expires or its key stops being published.
type Verifier struct {
	issuer    string
	keys      KeySet
	snap      snapshotter // keys, when it is one
	realClock bool        // no Options.Now: VerifyAt's now is this clock's
	algs      []jose.SignatureAlgorithm
	idAuds    []string
	leeway    time.Duration
	now       func() time.Time
	maxBytes  int
	cache     *tokenCache                       // nil when disabled
	headers   atomic.Pointer[map[string]Header] // decoded headers of tokens that verified
	failed    *failedTokens                     // tokens whose signature did not verify, recently
	sigs      atomic.Uint64                     // signature checks done
}

// New validates opts, fills in the defaults and returns a Verifier.
func New(opts Options) (*Verifier, error) {
	if opts.Issuer == "" {
		return nil, errors.New("verify: no issuer")
	}
	if opts.Keys == nil {
		return nil, errors.New("verify: no key set")
	}
	if opts.Leeway < 0 {
		return nil, errors.New("verify: negative leeway")
	}
	if opts.MaxTokenBytes < 0 {
		return nil, errors.New("verify: negative MaxTokenBytes")
	}
	snap, _ := opts.Keys.(snapshotter)
	v := &Verifier{
		issuer:    opts.Issuer,
		keys:      opts.Keys,
		snap:      snap,
		realClock: opts.Now == nil,
		idAuds:    slices.Clone(opts.IDTokenAudiences),
		leeway:    opts.Leeway,
		now:       opts.Now,
		maxBytes:  opts.MaxTokenBytes,
		failed:    newFailedTokens(),
	}
	algs := opts.Algorithms
	if len(algs) == 0 {
		algs = defaultAlgs()
	}
	for _, a := range algs {
		alg := jose.SignatureAlgorithm(a)
		if !asymmetric(alg) {
			return nil, fmt.Errorf("verify: algorithm %q not allowed (asymmetric JWS algorithms only)", a)
		}
		if !slices.Contains(v.algs, alg) {
			v.algs = append(v.algs, alg)
		}
	}
	if v.leeway == 0 {
		v.leeway = defaultLeeway
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxBytes == 0 {
		v.maxBytes = defaultMaxTokenBytes
	}
	switch {
	case opts.CacheSize == 0:
		v.cache = newTokenCache(defaultCacheSize)
	case opts.CacheSize > 0:
		v.cache = newTokenCache(opts.CacheSize)
	}
	return v, nil
}

// TokenExpiredError reports a token whose "exp" has passed, beyond the
// leeway. errors.Is(err, ErrExpired) holds for it; errors.As gives the
// expiry, for callers that want to tell "expired" from "invalid" (to slide
// a session, say).
type TokenExpiredError struct {
	// Expiry is the token's "exp".
	Expiry time.Time
}

// Error returns the description of ErrExpired: it names no token contents.
func (e *TokenExpiredError) Error() string { return ErrExpired.Error() }

// Unwrap returns ErrExpired.
func (e *TokenExpiredError) Unwrap() error { return ErrExpired }

// Verify checks token as a token of the given kind and returns its claims.
//
// The claims may be shared with other callers (they come from the cache):
// treat them as read-only. Errors wrap exactly one of the sentinel errors of
// this package (ErrMalformed, ErrAlgorithm, ErrUnknownKey, ErrSignature,
// ErrType, ErrIssuer, ErrAudience, ErrExpired, ErrNotYetValid); their text
// is short, names no token contents and is safe for a WWW-Authenticate
// error_description.
//
// The kind's "typ" header is required (RFC 7515 §4.1.9, compared without
// case and with an optional "application/" prefix): an ID token is never
// accepted as a session, a session never as an access token. Session and
// access tokens must name the issuer in "aud"; ID tokens one of
// Options.IDTokenAudiences.
func (v *Verifier) Verify(token string, kind claims.Kind) (*claims.Claims, error) {
	return v.verifyAt(token, kind, time.Time{})
}

// VerifyAt is Verify for a caller that has just read the real clock (a
// door timing its check): a cached token is checked against now instead
// of another reading, which on the hot path costs about a twentieth of a
// check. A Verifier with its own clock (Options.Now) ignores now.
func (v *Verifier) VerifyAt(token string, kind claims.Kind, now time.Time) (*claims.Claims, error) {
	if !v.realClock {
		now = time.Time{}
	}
	return v.verifyAt(token, kind, now)
}

// verifyAt is Verify; a cached token is checked against at unless it is
// zero.
func (v *Verifier) verifyAt(token string, kind claims.Kind, at time.Time) (*claims.Claims, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: empty token", ErrMalformed)
	}
	if len(token) > v.maxBytes {
		return nil, fmt.Errorf("%w: token too large", ErrMalformed)
	}
	var slot uint64
	if v.cache != nil {
		var e *tokenCacheEntry
		slot, e = v.cache.get(token)
		if e != nil {
			return v.checkCached(slot, token, e, kind, at)
		}
	}
	if v.failed.has(token) {
		return nil, errFailedRecently
	}
	c, e, err := v.verify(token, kind, false)
	if err != nil {
		if errors.Is(err, ErrSignature) {
			v.failed.add(token)
		}
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(slot, token, e)
	}
	return c, nil
}

// errFailedRecently refuses a token whose signature failed to verify a
// moment ago, without checking it again.
var errFailedRecently = fmt.Errorf("%w: signature does not verify", ErrSignature)

// Precheck tells, without checking a signature, whether Verify might
// accept token as a token of the given kind: cached reports a token
// verified before (Verify then costs a map lookup); a nil error with
// cached false means a token that passes every check but its signature
// (syntax, header, a published kid, iss, aud, exp, nbf) and has not failed
// its signature recently. Errors are Verify's. It is how a caller holding
// several candidate tokens (the session cookies a browser sent) picks the
// one worth a signature check: a nil error is never a reason to trust a
// token.
func (v *Verifier) Precheck(token string, kind claims.Kind) (cached bool, err error) {
	if token == "" {
		return false, fmt.Errorf("%w: empty token", ErrMalformed)
	}
	if len(token) > v.maxBytes {
		return false, fmt.Errorf("%w: token too large", ErrMalformed)
	}
	if v.cache != nil {
		if slot, e := v.cache.get(token); e != nil {
			if _, err := v.checkCached(slot, token, e, kind, time.Time{}); err != nil {
				return false, err
			}
			return true, nil
		}
	}
	if v.failed.has(token) {
		return false, errFailedRecently
	}
	_, err = v.precheck(token, kind, false)
	return false, err
}

// SignatureChecks is the number of signature verifications done so far,
// for metrics and tests: cached tokens, tokens refused by a cheaper check
// and tokens that failed a moment ago cost none.
func (v *Verifier) SignatureChecks() uint64 { return v.sigs.Load() }

// checkCached re-checks a cached verification: the kind, the validity
// window against the clock now (at, unless zero), and that the signing key
// is still published. An entry that can never pass again is dropped.
func (v *Verifier) checkCached(slot uint64, token string, e *tokenCacheEntry, kind claims.Kind, at time.Time) (*claims.Claims, error) {
	if e.kind != kind {
		return nil, fmt.Errorf("%w: not %s token", ErrType, kindName(kind))
	}
	now := at
	if now.IsZero() {
		now = v.now()
	}
	if now.After(e.notAfter) {
		v.cache.remove(slot, token)
		return nil, &TokenExpiredError{Expiry: e.claims.Expiry.Time()}
	}
	if now.Before(e.notBefore) {
		return nil, fmt.Errorf("%w: nbf or iat in the future", ErrNotYetValid)
	}
	if !v.stillPublished(e) {
		v.cache.remove(slot, token)
		return nil, fmt.Errorf("%w: signing key no longer published", ErrUnknownKey)
	}
	return e.claims, nil
}

// stillPublished reports whether the key that verified a cached token is
// still published. With a snapshotter it looks the key up only when the
// key set has changed since the last look; the snapshot is read before the
// lookup, so a change in between only costs another lookup later.
func (v *Verifier) stillPublished(e *tokenCacheEntry) bool {
	if v.snap == nil {
		_, ok := v.keys.PublicKey(e.kid)
		return ok
	}
	cur := v.snap.Snapshot()
	if cur != nil && e.keys.Load() == cur {
		return true
	}
	if _, ok := v.keys.PublicKey(e.kid); !ok {
		return false
	}
	if cur != nil {
		e.keys.Store(cur)
	}
	return true
}

// verify is the uncached check; hint relaxes it as VerifyIDTokenHint says.
// Every check that costs no cryptography comes first (precheck); the
// signature last.
func (v *Verifier) verify(token string, kind claims.Kind, hint bool) (*claims.Claims, *tokenCacheEntry, error) {
	u, err := v.precheck(token, kind, hint)
	if err != nil {
		return nil, nil, err
	}
	v.sigs.Add(1)
	if !verifySignature(u.alg, u.key, token[:u.dot2], u.sig) {
		return nil, nil, fmt.Errorf("%w: signature does not verify", ErrSignature)
	}
	if !u.knownHeader {
		v.rememberHeader(token[:u.dot1], u.header)
	}
	return u.entry.claims, u.entry, nil
}

// unverified is a token that passed every check but its signature.
type unverified struct {
	entry       *tokenCacheEntry
	header      Header
	knownHeader bool // the header was in the memo
	alg         jose.SignatureAlgorithm
	key         any
	dot1, dot2  int
	sig         []byte
}

// precheck runs every check of verify that costs no cryptography: syntax,
// header, key lookup, claims.
func (v *Verifier) precheck(token string, kind claims.Kind, hint bool) (unverified, error) {
	var u unverified
	if !knownKind(kind) {
		return u, fmt.Errorf("%w: unsupported token kind", ErrType)
	}
	dot1, dot2, ok := splitCompact(token)
	if !ok {
		return u, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	h, known := v.knownHeader(token[:dot1])
	if !known {
		var err error
		if h, err = decodeHeader(token[:dot1]); err != nil {
			return u, err
		}
	}
	if !typMatches(h.Typ, kind) {
		return u, fmt.Errorf("%w: not %s token", ErrType, kindName(kind))
	}
	alg := jose.SignatureAlgorithm(h.Alg)
	if !slices.Contains(v.algs, alg) {
		return u, fmt.Errorf("%w: alg not accepted", ErrAlgorithm)
	}
	if h.Kid == "" {
		return u, fmt.Errorf("%w: no kid", ErrUnknownKey)
	}
	key, ok := v.keys.PublicKey(h.Kid)
	if !ok || (key.Use != "" && key.Use != "sig") {
		return u, fmt.Errorf("%w: kid not published", ErrUnknownKey)
	}
	if key.Algorithm != h.Alg || !keyFits(alg, key.Key) {
		// A key published for one algorithm never verifies another
		// (RFC 8725 §3.1: no algorithm confusion).
		return u, fmt.Errorf("%w: alg does not match the key", ErrAlgorithm)
	}

	payload, err := b64.DecodeString(token[dot1+1 : dot2])
	if err != nil {
		return u, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	c := new(claims.Claims)
	if err := claims.Decode(payload, c); err != nil {
		return u, fmt.Errorf("%w: claims are not a JSON object", ErrMalformed)
	}
	notBefore, notAfter, err := v.checkClaims(c, kind, hint)
	if err != nil {
		return u, err
	}

	sig, err := b64.DecodeString(token[dot2+1:])
	if err != nil {
		return u, fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	return unverified{
		entry:  &tokenCacheEntry{claims: c, kid: h.Kid, kind: kind, notBefore: notBefore, notAfter: notAfter, cost: len(token) + len(payload)},
		header: h, knownHeader: known, alg: alg, key: key.Key, dot1: dot1, dot2: dot2, sig: sig,
	}, nil
}

// checkClaims checks iss, aud, exp, nbf and iat (RFC 7519 §4.1, RFC 9068
// §4, OIDC Core §3.1.3.7) and returns the window in which the token is
// valid, leeway included. A hint skips aud and the expiry.
func (v *Verifier) checkClaims(c *claims.Claims, kind claims.Kind, hint bool) (notBefore, notAfter time.Time, err error) {
	if c.Issuer != v.issuer {
		return notBefore, notAfter, fmt.Errorf("%w: iss is not this issuer", ErrIssuer)
	}
	switch {
	case hint:
	case kind == claims.KindID:
		if !slices.ContainsFunc(v.idAuds, c.Audience.Contains) {
			return notBefore, notAfter, fmt.Errorf("%w: ID token not issued to an accepted client", ErrAudience)
		}
	default:
		if !c.Audience.Contains(v.issuer) {
			return notBefore, notAfter, fmt.Errorf("%w: aud does not name this issuer", ErrAudience)
		}
	}
	if c.Expiry == nil {
		return notBefore, notAfter, fmt.Errorf("%w: no exp", ErrExpired)
	}
	now := v.now()
	notAfter = c.Expiry.Time().Add(v.leeway)
	if now.After(notAfter) && !hint {
		return notBefore, notAfter, &TokenExpiredError{Expiry: c.Expiry.Time()}
	}
	for _, d := range []*jwt.NumericDate{c.NotBefore, c.IssuedAt} {
		if d == nil {
			continue
		}
		if t := d.Time().Add(-v.leeway); t.After(notBefore) {
			notBefore = t
		}
	}
	if now.Before(notBefore) {
		return notBefore, notAfter, fmt.Errorf("%w: nbf or iat in the future", ErrNotYetValid)
	}
	return notBefore, notAfter, nil
}

// knownKind reports whether kind is one we verify.
func knownKind(kind claims.Kind) bool {
	switch kind {
	case claims.KindID, claims.KindAccess, claims.KindSession:
		return true
	}
	return false
}

// kindName is a short, fixed name of kind for error descriptions.
func kindName(kind claims.Kind) string {
	switch kind {
	case claims.KindID:
		return "an ID"
	case claims.KindAccess:
		return "an access"
	case claims.KindSession:
		return "a session"
	}
	return "a known"
}

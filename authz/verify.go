package authz

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/claims"
)

// KeySet gives the public keys that verify tokens, by "kid". It is read on
// every check, so it must answer from memory without blocking:
// *keys.Manager (in the broker's process) and *RemoteKeySet (in a
// stateless authz replica) implement it. A key verifies only tokens whose
// "alg" equals its own: a key without "alg" verifies nothing.
type KeySet interface {
	// PublicKey returns the published public key with kid, and whether
	// there is one.
	PublicKey(kid string) (jose.JSONWebKey, bool)
}

// Defaults of VerifierOptions.
const (
	// verifierDefaultLeeway is the clock skew tolerated on "exp", "nbf" and "iat".
	verifierDefaultLeeway = 30 * time.Second
	// verifierDefaultCacheSize is the number of verified tokens kept by default.
	verifierDefaultCacheSize = 16384
	// verifierDefaultMaxTokenBytes is the longest token parsed by default.
	verifierDefaultMaxTokenBytes = 16 << 10
)

// verifierDefaultAlgs are the algorithms package keys signs with.
func verifierDefaultAlgs() []string {
	return []string{string(jose.RS256), string(jose.ES256), string(jose.EdDSA)}
}

// VerifierOptions configure a Verifier. Issuer and Keys are required; the
// zero value of every other field has a sensible default.
type VerifierOptions struct {
	// Issuer is our issuer URL: a token's "iss" must equal it byte for
	// byte, and session and access tokens must name it in "aud".
	Issuer string
	// Keys gives the public keys, by kid.
	Keys KeySet
	// Algorithms are the accepted "alg" values. Default RS256, ES256 and
	// EdDSA. Only asymmetric algorithms are allowed: "none" and HS* are
	// refused by NewVerifier.
	Algorithms []string
	// IDTokenAudiences lists the client ids whose ID tokens are accepted
	// as a Bearer credential (SPEC §6: authz.id_token_audiences). Empty
	// by default: every ID token is refused with ErrAudience.
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
// (see VerifierOptions.CacheSize), so that a token seen again costs a map
// lookup until it expires or its key stops being published.
type Verifier struct {
	issuer   string
	keys     KeySet
	algs     []jose.SignatureAlgorithm
	idAuds   []string
	leeway   time.Duration
	now      func() time.Time
	maxBytes int
	cache    *tokenCache                          // nil when disabled
	headers  atomic.Pointer[map[string]jwsHeader] // decoded headers of tokens that verified
}

var _ TokenVerifier = (*Verifier)(nil)

// NewVerifier validates opts, fills in the defaults and returns a Verifier.
func NewVerifier(opts VerifierOptions) (*Verifier, error) {
	if opts.Issuer == "" {
		return nil, errors.New("authz: verifier: no issuer")
	}
	if opts.Keys == nil {
		return nil, errors.New("authz: verifier: no key set")
	}
	if opts.Leeway < 0 {
		return nil, errors.New("authz: verifier: negative leeway")
	}
	if opts.MaxTokenBytes < 0 {
		return nil, errors.New("authz: verifier: negative MaxTokenBytes")
	}
	v := &Verifier{
		issuer:   opts.Issuer,
		keys:     opts.Keys,
		idAuds:   slices.Clone(opts.IDTokenAudiences),
		leeway:   opts.Leeway,
		now:      opts.Now,
		maxBytes: opts.MaxTokenBytes,
	}
	algs := opts.Algorithms
	if len(algs) == 0 {
		algs = verifierDefaultAlgs()
	}
	for _, a := range algs {
		alg := jose.SignatureAlgorithm(a)
		if !jwsAsymmetric(alg) {
			return nil, fmt.Errorf("authz: verifier: algorithm %q not allowed (asymmetric JWS algorithms only)", a)
		}
		if !slices.Contains(v.algs, alg) {
			v.algs = append(v.algs, alg)
		}
	}
	if v.leeway == 0 {
		v.leeway = verifierDefaultLeeway
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxBytes == 0 {
		v.maxBytes = verifierDefaultMaxTokenBytes
	}
	switch {
	case opts.CacheSize == 0:
		v.cache = newTokenCache(verifierDefaultCacheSize)
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
// VerifierOptions.IDTokenAudiences.
func (v *Verifier) Verify(token string, kind claims.Kind) (*claims.Claims, error) {
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
			return v.checkCached(slot, token, e, kind)
		}
	}
	c, e, err := v.verify(token, kind)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(slot, token, e)
	}
	return c, nil
}

// checkCached re-checks a cached verification: the kind, the validity
// window against the clock now, and that the signing key is still
// published. An entry that can never pass again is dropped.
func (v *Verifier) checkCached(slot uint64, token string, e *tokenCacheEntry, kind claims.Kind) (*claims.Claims, error) {
	if e.kind != kind {
		return nil, fmt.Errorf("%w: not %s token", ErrType, verifierKindName(kind))
	}
	now := v.now()
	if now.After(e.notAfter) {
		v.cache.remove(slot, token)
		return nil, &TokenExpiredError{Expiry: e.claims.Expiry.Time()}
	}
	if now.Before(e.notBefore) {
		return nil, fmt.Errorf("%w: nbf or iat in the future", ErrNotYetValid)
	}
	if _, ok := v.keys.PublicKey(e.kid); !ok {
		v.cache.remove(slot, token)
		return nil, fmt.Errorf("%w: signing key no longer published", ErrUnknownKey)
	}
	return e.claims, nil
}

// jwsHeader is the protected header of the tokens we issue: nothing else is
// accepted in it (no "crit", "jku", "jwk", "x5c"…).
type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// jwsB64 decodes JWS segments: base64url without padding, and only the
// canonical encoding (no stray bits), so that no two distinct strings
// verify as the same token.
var jwsB64 = base64.RawURLEncoding.Strict()

// verify is the uncached check. Every check that costs no cryptography comes
// first: syntax, header, key lookup, claims; the signature last.
func (v *Verifier) verify(token string, kind claims.Kind) (*claims.Claims, *tokenCacheEntry, error) {
	if !verifierKnownKind(kind) {
		return nil, nil, fmt.Errorf("%w: unsupported token kind", ErrType)
	}
	dot1, dot2, ok := jwsSplitCompact(token)
	if !ok {
		return nil, nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	h, known := v.knownHeader(token[:dot1])
	if !known {
		var err error
		if h, err = jwsDecodeHeader(token[:dot1]); err != nil {
			return nil, nil, err
		}
	}
	if !jwsTypMatches(h.Typ, kind) {
		return nil, nil, fmt.Errorf("%w: not %s token", ErrType, verifierKindName(kind))
	}
	alg := jose.SignatureAlgorithm(h.Alg)
	if !slices.Contains(v.algs, alg) {
		return nil, nil, fmt.Errorf("%w: alg not accepted", ErrAlgorithm)
	}
	if h.Kid == "" {
		return nil, nil, fmt.Errorf("%w: no kid", ErrUnknownKey)
	}
	key, ok := v.keys.PublicKey(h.Kid)
	if !ok || (key.Use != "" && key.Use != "sig") {
		return nil, nil, fmt.Errorf("%w: kid not published", ErrUnknownKey)
	}
	if key.Algorithm != h.Alg || !jwsKeyFits(alg, key.Key) {
		// A key published for one algorithm never verifies another
		// (RFC 8725 §3.1: no algorithm confusion).
		return nil, nil, fmt.Errorf("%w: alg does not match the key", ErrAlgorithm)
	}

	payload, err := jwsB64.DecodeString(token[dot1+1 : dot2])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	c := new(claims.Claims)
	if err := json.Unmarshal(payload, c); err != nil {
		return nil, nil, fmt.Errorf("%w: claims are not a JSON object", ErrMalformed)
	}
	notBefore, notAfter, err := v.checkClaims(c, kind)
	if err != nil {
		return nil, nil, err
	}

	sig, err := jwsB64.DecodeString(token[dot2+1:])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	if !jwsVerify(alg, key.Key, token[:dot2], sig) {
		return nil, nil, fmt.Errorf("%w: signature does not verify", ErrSignature)
	}
	if !known {
		v.rememberHeader(token[:dot1], h)
	}
	return c, &tokenCacheEntry{claims: c, kid: h.Kid, kind: kind, notBefore: notBefore, notAfter: notAfter, cost: len(token) + len(payload)}, nil
}

// checkClaims checks iss, aud, exp, nbf and iat (RFC 7519 §4.1, RFC 9068
// §4, OIDC Core §3.1.3.7) and returns the window in which the token is
// valid, leeway included.
func (v *Verifier) checkClaims(c *claims.Claims, kind claims.Kind) (notBefore, notAfter time.Time, err error) {
	if c.Issuer != v.issuer {
		return notBefore, notAfter, fmt.Errorf("%w: iss is not this issuer", ErrIssuer)
	}
	switch kind {
	case claims.KindID:
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
	if now.After(notAfter) {
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

// verifierKnownKind reports whether kind is one we verify.
func verifierKnownKind(kind claims.Kind) bool {
	switch kind {
	case claims.KindID, claims.KindAccess, claims.KindSession:
		return true
	}
	return false
}

// verifierKindName is a short, fixed name of kind for error descriptions.
func verifierKindName(kind claims.Kind) string {
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

// jwsTypMatches compares a "typ" header with the kind's media type, ignoring
// case and an "application/" prefix (RFC 7515 §4.1.9; RFC 9068 §2.1
// registers "application/at+jwt").
func jwsTypMatches(typ string, kind claims.Kind) bool {
	const prefix = "application/"
	if len(typ) > len(prefix) && strings.EqualFold(typ[:len(prefix)], prefix) {
		typ = typ[len(prefix):]
		if strings.IndexByte(typ, '/') >= 0 {
			return false
		}
	}
	return strings.EqualFold(typ, string(kind))
}

// jwsAsymmetric reports whether alg is one of the asymmetric JWS
// algorithms, the only ones a Verifier accepts: never "none", never an HMAC
// (RFC 8725 §3.1, §3.2).
func jwsAsymmetric(alg jose.SignatureAlgorithm) bool {
	return alg == jose.EdDSA || jwsHash(alg) != 0
}

// jwsHash is the digest of a JWS algorithm (RFC 7518 §3.1); zero for
// EdDSA, which hashes internally.
func jwsHash(alg jose.SignatureAlgorithm) crypto.Hash {
	switch alg {
	case jose.RS256, jose.PS256, jose.ES256:
		return crypto.SHA256
	case jose.RS384, jose.PS384, jose.ES384:
		return crypto.SHA384
	case jose.RS512, jose.PS512, jose.ES512:
		return crypto.SHA512
	}
	return 0
}

// jwsKeyFits reports whether key is a public key of the type (and, for
// RSA, the size: RFC 7518 §3.3) that alg needs.
func jwsKeyFits(alg jose.SignatureAlgorithm, key any) bool {
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		k, ok := key.(*rsa.PublicKey)
		return ok && k != nil && k.N != nil && k.N.BitLen() >= 2048
	case jose.ES256, jose.ES384, jose.ES512:
		k, ok := key.(*ecdsa.PublicKey)
		if !ok || k == nil {
			return false
		}
		switch alg {
		case jose.ES256:
			return k.Curve == elliptic.P256()
		case jose.ES384:
			return k.Curve == elliptic.P384()
		}
		return k.Curve == elliptic.P521()
	case jose.EdDSA:
		k, ok := key.(ed25519.PublicKey)
		return ok && len(k) == ed25519.PublicKeySize
	}
	return false
}

// jwsVerify checks the signature sig of the signing input (the token up to
// its second dot, RFC 7515 §5.2) with key, which jwsKeyFits accepted for
// alg. It knows the asymmetric algorithms of RFC 7518 §3.3–3.5 and RFC 8037
// §3.1 only: there is no path at all for "none" or an HMAC.
//
// It verifies the exact bytes received rather than re-encoding a parsed
// header and payload as go-jose does, which on the hot path costs as much
// as a third of an RS256 verification.
func jwsVerify(alg jose.SignatureAlgorithm, key any, input string, sig []byte) bool {
	if alg == jose.EdDSA {
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(key.(ed25519.PublicKey), []byte(input), sig)
	}
	hf := jwsHash(alg)
	var digest []byte
	switch hf {
	case crypto.SHA256:
		d := sha256.Sum256([]byte(input))
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384([]byte(input))
		digest = d[:]
	case crypto.SHA512:
		d := sha512.Sum512([]byte(input))
		digest = d[:]
	default:
		return false
	}
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512:
		return rsa.VerifyPKCS1v15(key.(*rsa.PublicKey), hf, digest, sig) == nil
	case jose.PS256, jose.PS384, jose.PS512:
		// RFC 7518 §3.5: the salt is as long as the hash.
		return rsa.VerifyPSS(key.(*rsa.PublicKey), hf, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case jose.ES256, jose.ES384, jose.ES512:
		// RFC 7518 §3.4: R and S as fixed-size big-endian octets.
		k := key.(*ecdsa.PublicKey)
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k, digest, r, s)
	}
	return false
}

// jwsSplitCompact finds the two dots of a compact JWS (RFC 7515 §7.1):
// exactly two, the header not empty. Line breaks, which the base64 decoder
// would skip, are refused; the decoder refuses every other stray byte.
func jwsSplitCompact(token string) (dot1, dot2 int, ok bool) {
	dot1 = strings.IndexByte(token, '.')
	if dot1 <= 0 {
		return 0, 0, false
	}
	dot2 = strings.IndexByte(token[dot1+1:], '.')
	if dot2 < 0 {
		return 0, 0, false
	}
	dot2 += dot1 + 1
	if strings.IndexByte(token[dot2+1:], '.') >= 0 || strings.ContainsAny(token, "\r\n") {
		return 0, 0, false
	}
	return dot1, dot2, true
}

// jwsDecodeHeader decodes the protected header, refusing any member other than
// alg, kid and typ (names compared exactly), values other than strings, and
// anything that is not one JSON object.
func jwsDecodeHeader(seg string) (jwsHeader, error) {
	var h jwsHeader
	raw, err := jwsB64.DecodeString(seg)
	if err != nil {
		return h, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return h, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	for name, value := range members {
		var dst *string
		switch name {
		case "alg":
			dst = &h.Alg
		case "kid":
			dst = &h.Kid
		case "typ":
			dst = &h.Typ
		default:
			return h, fmt.Errorf("%w: header members other than alg, kid and typ", ErrMalformed)
		}
		if value[0] != '"' || json.Unmarshal(value, dst) != nil {
			return h, fmt.Errorf("%w: header member is not a string", ErrMalformed)
		}
	}
	return h, nil
}

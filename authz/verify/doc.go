// Package verify is stateless verification of the tokens ghbroker issues:
// compact JWS parsing and signature checks against in-memory keys
// (jws.go), the claims checks and the verified-token cache (verify.go,
// cache.go), and a key set read from an issuer's published JWKS (remote.go).
//
// It owns no policy and no wire format of any gateway: the authz package
// decides, the broker signs. It imports neither of them, nor any store, so
// that a stateless authz replica, the session code and the broker's hint
// checks can all share it.
package verify

import "errors"

// Errors returned by Verify and VerifyIDTokenHint, one per failed check,
// matched with errors.Is.
var (
	// ErrMalformed: not a compact JWS we can parse, or too large.
	ErrMalformed = errors.New("verify: malformed token")
	// ErrAlgorithm: the header names an algorithm we do not accept.
	ErrAlgorithm = errors.New("verify: algorithm not accepted")
	// ErrUnknownKey: no published key has the token's kid.
	ErrUnknownKey = errors.New("verify: unknown signing key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("verify: bad signature")
	// ErrType: the "typ" header is not the one of the expected kind.
	ErrType = errors.New("verify: wrong token type")
	// ErrIssuer: "iss" is not ours.
	ErrIssuer = errors.New("verify: wrong issuer")
	// ErrAudience: "aud" does not name an accepted audience.
	ErrAudience = errors.New("verify: wrong audience")
	// ErrExpired: "exp" has passed (beyond the leeway).
	ErrExpired = errors.New("verify: token expired")
	// ErrNotYetValid: "nbf" or "iat" is in the future (beyond the leeway).
	ErrNotYetValid = errors.New("verify: token not yet valid")
)

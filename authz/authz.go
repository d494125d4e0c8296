// Package authz is ghbroker's authorization check: the hot path that
// Ambassador/Emissary, Envoy, nginx and Traefik call on every request.
//
// It owns token verification against in-memory keys (verify.go, cache.go,
// remote.go), the compiled per-host policy and the pure decision
// (policy.go: Evaluate), and the front doors that translate gateway
// requests into that decision and back (http.go, grpc.go). It never imports
// the broker or the store: no storage read and no GitHub call happens inside
// a check, so any number of stateless replicas can answer it.
package authz

import (
	"errors"

	"github.com/ghbroker/ghbroker/claims"
)

// TokenVerifier checks a compact JWS of the given kind and returns its
// claims. *Verifier implements it; front doors depend on this interface.
type TokenVerifier interface {
	Verify(token string, kind claims.Kind) (*claims.Claims, error)
}

// Errors returned by Verify, one per failed check, matched with errors.Is.
var (
	// ErrMalformed: not a compact JWS we can parse, or too large.
	ErrMalformed = errors.New("authz: malformed token")
	// ErrAlgorithm: the header names an algorithm we do not accept.
	ErrAlgorithm = errors.New("authz: algorithm not accepted")
	// ErrUnknownKey: no published key has the token's kid.
	ErrUnknownKey = errors.New("authz: unknown signing key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("authz: bad signature")
	// ErrType: the "typ" header is not the one of the expected kind.
	ErrType = errors.New("authz: wrong token type")
	// ErrIssuer: "iss" is not ours.
	ErrIssuer = errors.New("authz: wrong issuer")
	// ErrAudience: "aud" does not name an accepted audience.
	ErrAudience = errors.New("authz: wrong audience")
	// ErrExpired: "exp" has passed (beyond the leeway).
	ErrExpired = errors.New("authz: token expired")
	// ErrNotYetValid: "nbf" or "iat" is in the future (beyond the leeway).
	ErrNotYetValid = errors.New("authz: token not yet valid")
)

// Outcome is the result of a check.
type Outcome int

// Outcomes.
const (
	// Allow: the request may pass.
	Allow Outcome = iota
	// Unauthenticated: no credential, or an invalid one.
	Unauthenticated
	// Forbidden: a valid credential that the policy does not admit.
	Forbidden
)

func (o Outcome) String() string {
	switch o {
	case Allow:
		return "allow"
	case Unauthenticated:
		return "unauthenticated"
	case Forbidden:
		return "forbidden"
	}
	return "unknown"
}

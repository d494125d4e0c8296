// Package authz is ghbroker's authorization check: the hot path that
// Ambassador/Emissary, Envoy, nginx and Traefik call on every request.
//
// It owns the compiled per-host policy and the pure decision (policy.go:
// Evaluate), the reconstruction of the original request from each
// gateway's headers (request.go), and the front doors that translate
// gateway requests into that decision and back (http.go, grpc.go). Token
// verification is package verify's. It never imports the broker or the
// store: no storage read and no GitHub call happens inside a check, so any
// number of stateless replicas can answer it.
package authz

import (
	"github.com/ghbroker/ghbroker/authz/verify"
	"github.com/ghbroker/ghbroker/claims"
)

// TokenVerifier checks a compact JWS of the given kind and returns its
// claims; errors wrap the sentinels of package verify. *verify.Verifier
// implements it; front doors depend on this interface.
type TokenVerifier interface {
	// Verify checks token and returns its claims.
	Verify(token string, kind claims.Kind) (*claims.Claims, error)
	// Precheck tells, without a signature check, whether Verify might
	// accept token: cached when it would cost no signature check, a nil
	// error when every check but the signature passes (see
	// verify.Verifier.Precheck). A door holding several session cookies
	// uses it to spend at most one signature check on a request.
	Precheck(token string, kind claims.Kind) (cached bool, err error)
}

var _ TokenVerifier = (*verify.Verifier)(nil)

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

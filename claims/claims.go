// Package claims holds the typed token claims that ghbroker issues and
// verifies. It is a leaf package: the broker (which mints tokens) and authz
// (which verifies them) both import it, and it imports nothing of ours.
//
// It owns the token kinds, their JOSE "typ" headers and the claim set. It does
// not sign or verify anything; see package keys and package authz.
package claims

import (
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4/jwt"
)

// Kind is a kind of token, carried in the JOSE "typ" header so that one kind
// is never accepted in place of another (an ID token is never a session).
type Kind string

// Token kinds and their "typ" header values.
const (
	// KindID is an OpenID Connect ID token (OIDC Core §2). "JWT" is the
	// value relying parties expect.
	KindID Kind = "JWT"
	// KindAccess is an RFC 9068 JWT access token.
	KindAccess Kind = "at+jwt"
	// KindSession is the broker's own stateless session token, carried in
	// the SSO cookie and accepted only from the cookie.
	KindSession Kind = "ghbroker-session+jwt"
	// KindRevocations is the broker's signed revocation feed, read by
	// `ghbroker authz` replicas; never a credential.
	KindRevocations Kind = "ghbroker-revocations+jwt"
	// KindLogout is an OpenID Back-Channel Logout 1.0 logout token.
	KindLogout Kind = "logout+jwt"
)

// GatewaySuffix is appended to the issuer to form GatewayAudience.
const GatewaySuffix = "/gateway"

// GatewayAudience is the audience that makes an access token a gateway
// credential: the broker adds it to the access tokens of clients with
// gateway_access, and the authorization check accepts a Bearer access
// token only when its "aud" names it. Access tokens without it are for
// /userinfo and the client's own APIs only.
func GatewayAudience(issuer string) string { return strings.TrimSuffix(issuer, "/") + GatewaySuffix }

// Claims is the claim set of every token ghbroker issues. Registered claims
// come from the embedded jwt.Claims; ours follow and never reuse a
// registered name.
type Claims struct {
	jwt.Claims

	// AuthTime is when the user last signed in with GitHub (OIDC Core §2).
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
	// Nonce echoes the relying party's nonce (ID tokens only).
	Nonce string `json:"nonce,omitempty"`
	// AuthorizedParty is the client the token was issued to (OIDC "azp").
	AuthorizedParty string `json:"azp,omitempty"`
	// AccessTokenHash is the OIDC "at_hash" of the access token issued
	// alongside an ID token.
	AccessTokenHash string `json:"at_hash,omitempty"`
	// ClientID is the RFC 9068 "client_id" of an access token.
	ClientID string `json:"client_id,omitempty"`
	// Scope is the space-separated scope of an access token (RFC 9068).
	Scope string `json:"scope,omitempty"`
	// SessionID is the broker-side session the token derives from ("sid",
	// OIDC Front-/Back-Channel Logout).
	SessionID string `json:"sid,omitempty"`
	// IssuedAtMillis is when the token (or, for a slid session token, the
	// memberships it carries) was issued, in Unix milliseconds: "iat" has
	// whole seconds only, and a revocation must tell a token minted just
	// before it from one minted just after, within the same second.
	IssuedAtMillis int64 `json:"iat_ms,omitempty"`

	// PreferredUsername is the GitHub login.
	PreferredUsername string `json:"preferred_username,omitempty"`
	// Name is the GitHub display name.
	Name string `json:"name,omitempty"`
	// Email is the primary verified email address.
	Email string `json:"email,omitempty"`
	// EmailVerified reports whether Email is verified on GitHub.
	EmailVerified *bool `json:"email_verified,omitempty"`
	// Picture is the GitHub avatar URL.
	Picture string `json:"picture,omitempty"`
	// Groups lists org logins and "org/team-slug" entries, limited to the
	// allowed orgs.
	Groups []string `json:"groups,omitempty"`
}

// IssuedAtMs is the token's issue time in Unix milliseconds: iat_ms, or
// the start of iat's second for a token minted without it (so that it
// counts as issued before any revocation in that second), or 0.
func (c *Claims) IssuedAtMs() int64 {
	switch {
	case c.IssuedAtMillis > 0:
		return c.IssuedAtMillis
	case c.IssuedAt != nil:
		return c.IssuedAt.Time().UnixMilli()
	}
	return 0
}

// InGroup reports whether the claims list group g.
func (c *Claims) InGroup(g string) bool {
	return slices.Contains(c.Groups, g)
}

package oidc

import (
	"net/http"

	"github.com/ghbroker/ghbroker/broker/internal/oauth"
)

// oauthError is an OAuth 2.0 error response (RFC 6749 §5.2, §4.1.2.1),
// shared with broker/device through broker/internal/oauth.
type oauthError = oauth.Error

func errInvalidRequest(desc string) *oauthError { return oauth.InvalidRequest(desc) }

func errInvalidGrant(desc string) *oauthError { return oauth.InvalidGrant(desc) }

func errInvalidScope(desc string) *oauthError { return oauth.InvalidScope(desc) }

func errUnsupportedGrant(desc string) *oauthError { return oauth.UnsupportedGrant(desc) }

func errServer() *oauthError { return oauth.Server() }

// noStore sets the caching headers every token-bearing response needs
// (RFC 6749 §5.1).
func noStore(h http.Header) { oauth.NoStore(h) }

// writeJSON writes v with status, headers first.
func writeJSON(w http.ResponseWriter, status int, v any) { oauth.WriteJSON(w, status, v) }

// writeOAuthError is the one writer of OAuth JSON errors (oauth.WriteError).
func (p *Provider) writeOAuthError(w http.ResponseWriter, r *http.Request, err error) {
	oauth.WriteError(w, r, p.log, p.issuer, err)
}

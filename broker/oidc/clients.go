package oidc

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Client is a static OIDC relying party.
type Client struct {
	// ID is the client_id.
	ID string
	// Secret is the client secret; empty for a public client.
	Secret string
	// Public clients have no secret and must use PKCE.
	Public bool
	// Name is shown to people.
	Name string
	// RedirectURIs are matched exactly (RFC 9700 §2.1).
	RedirectURIs []string
	// PostLogoutRedirectURIs are matched exactly.
	PostLogoutRedirectURIs []string
	// Scopes limits what the client may ask for; empty means every
	// supported scope.
	Scopes []string
	// AlwaysIssueRefreshToken issues a refresh token without offline_access.
	AlwaysIssueRefreshToken bool
	// TokenTTL is the lifetime of the client's ID and access tokens.
	// Default 1h.
	TokenTTL time.Duration
}

// supportedScopes are the scopes the broker knows.
var supportedScopes = []string{"openid", "profile", "email", "groups", "offline_access"}

func (p *Provider) client(id string) (*Client, bool) {
	c, ok := p.clients[id]
	return c, ok
}

func (c *Client) allowsScope(scope string) bool {
	return len(c.Scopes) == 0 || slices.Contains(c.Scopes, scope)
}

// secretMatches compares in constant time (over hashes, so the lengths
// leak nothing either).
func (c *Client) secretMatches(secret string) bool {
	a, b := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(c.Secret))
	return c.Secret != "" && subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// authenticateClient identifies the calling client at the token,
// revocation and introspection endpoints: client_secret_basic (RFC 6749
// §2.3.1: id and secret form-urlencoded inside Basic), client_secret_post,
// or a public client naming itself with client_id. form must be parsed.
func (p *Provider) authenticateClient(r *http.Request, form url.Values) (*Client, error) {
	auth := r.Header.Values("Authorization")
	if len(auth) > 1 {
		return nil, errInvalidRequest("more than one Authorization header")
	}
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	if len(auth) == 1 {
		scheme, cred, _ := strings.Cut(auth[0], " ")
		if !strings.EqualFold(scheme, "Basic") {
			return nil, errInvalidClient("unsupported client authentication scheme", true)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return nil, errInvalidClient("malformed Basic credentials", true)
		}
		rawID, rawSecret, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, errInvalidClient("malformed Basic credentials", true)
		}
		id, err1 := url.QueryUnescape(rawID)
		secret, err2 := url.QueryUnescape(rawSecret)
		if err1 != nil || err2 != nil {
			return nil, errInvalidClient("malformed Basic credentials", true)
		}
		if formSecret != "" {
			return nil, errInvalidRequest("use one client authentication method, not both")
		}
		if formID != "" && formID != id {
			return nil, errInvalidRequest("client_id does not match the authenticated client")
		}
		c, ok := p.client(id)
		if !ok || c.Public || !c.secretMatches(secret) {
			return nil, errInvalidClient("client authentication failed", true)
		}
		return c, nil
	}
	if formID == "" {
		return nil, errInvalidClient("client authentication required", false)
	}
	c, ok := p.client(formID)
	if !ok {
		return nil, errInvalidClient("client authentication failed", false)
	}
	if c.Public {
		if formSecret != "" {
			return nil, errInvalidClient("a public client has no secret", false)
		}
		return c, nil
	}
	if !c.secretMatches(formSecret) {
		return nil, errInvalidClient("client authentication failed", false)
	}
	return c, nil
}

package oauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/ghbroker/ghbroker/broker/internal/page"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Grant types a client may be allowed (Client.GrantTypes).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	// GrantDeviceCode is the device authorization grant (RFC 8628); on the
	// wire its grant_type is DeviceCodeGrantType.
	GrantDeviceCode = "device_code"
	// DeviceCodeGrantType is the grant_type value of RFC 8628 §3.4.
	DeviceCodeGrantType = "urn:ietf:params:oauth:grant-type:device_code"
)

// DefaultGrantTypes are a client's grants when it lists none.
var defaultGrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}

// supportedScopes are the scopes the broker knows.
var supportedScopes = []string{"openid", "profile", "email", "groups", "offline_access"}

// SupportedScopes returns the scopes the broker knows.
func SupportedScopes() []string { return slices.Clone(supportedScopes) }

// Client is a static OAuth/OIDC client.
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
	// GrantTypes are the grants the client may use: GrantAuthorizationCode,
	// GrantRefreshToken, GrantDeviceCode. Empty means authorization_code
	// and refresh_token.
	GrantTypes []string
	// AlwaysIssueRefreshToken issues a refresh token without offline_access.
	AlwaysIssueRefreshToken bool
	// TokenTTL is the lifetime of the client's ID and access tokens.
	// Default 1h.
	TokenTTL time.Duration
	// BackchannelLogoutURI, when set, receives an OpenID Back-Channel
	// Logout 1.0 logout_token when a session the client has tokens of ends.
	BackchannelLogoutURI string
	// GatewayAccess makes the client's access tokens gateway credentials:
	// they carry claims.GatewayAudience, which the authorization check
	// requires of a Bearer access token.
	GatewayAccess bool
}

// AllowsScope reports whether the client may ask for scope.
func (c *Client) AllowsScope(scope string) bool {
	return len(c.Scopes) == 0 || slices.Contains(c.Scopes, scope)
}

// AllowsGrant reports whether the client may use grant (a Grant… name).
func (c *Client) AllowsGrant(grant string) bool {
	if len(c.GrantTypes) == 0 {
		return slices.Contains(defaultGrantTypes, grant)
	}
	return slices.Contains(c.GrantTypes, grant)
}

// DisplayName is what a person is shown: the name, else the id.
func (c *Client) DisplayName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// RequestedScopes parses a scope parameter (RFC 6749 §3.3): unknown
// scopes are ignored, duplicates dropped, a scope the client may not have
// refused, and openid is required.
func (c *Client) RequestedScopes(scope string) ([]string, *Error) {
	var out []string
	for _, sc := range strings.Fields(scope) {
		if !slices.Contains(supportedScopes, sc) {
			continue
		}
		if !c.AllowsScope(sc) {
			return nil, InvalidScope("scope " + sc + " is not allowed for this client")
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if !slices.Contains(out, "openid") {
		return nil, InvalidScope("the openid scope is required")
	}
	return out, nil
}

// secretMatches compares in constant time (over hashes, so the lengths
// leak nothing either).
func (c *Client) secretMatches(secret string) bool {
	a, b := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(c.Secret))
	return c.Secret != "" && subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// Clients is the registry of static clients.
type Clients struct {
	byID     map[string]*Client
	failures *failureLimiter
	log      *slog.Logger
}

// NewClients checks that every id is set and unique. now is the clock of
// the failed-authentication limiter (nil: time.Now); log receives a warning
// per failed authentication (rate-limited by the limiter itself).
func NewClients(list []Client, now func() time.Time, log *slog.Logger) (*Clients, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cs := &Clients{byID: make(map[string]*Client, len(list)), failures: newFailureLimiter(now), log: log}
	for i := range list {
		c := list[i]
		if _, dup := cs.byID[c.ID]; dup || c.ID == "" {
			return nil, fmt.Errorf("oauth: client id %q is empty or duplicated", c.ID)
		}
		if !c.Public {
			if err := CheckSecret(c.Secret); err != nil {
				return nil, fmt.Errorf("oauth: client %q: %w", c.ID, err)
			}
		}
		cs.byID[c.ID] = &c
	}
	return cs, nil
}

// Lookup returns the client with that id.
func (cs *Clients) Lookup(id string) (*Client, bool) {
	c, ok := cs.byID[id]
	return c, ok
}

// Authenticate identifies the calling client: client_secret_basic (RFC 6749
// §2.3.1: id and secret form-urlencoded inside Basic), client_secret_post,
// or a public client naming itself with client_id. form must be parsed.
//
// Failures are rate-limited per client id and per source address: past the
// budget every attempt answers 429 with Retry-After before any secret is
// compared, and each failure is logged at warn.
func (cs *Clients) Authenticate(r *http.Request, form url.Values) (*Client, error) {
	c, claimed, err := cs.authenticate(r, form)
	if err == nil || claimed == "" {
		return c, err
	}
	var oe *Error
	if errors.As(err, &oe) && oe.Status == http.StatusTooManyRequests {
		return nil, err
	}
	cs.failures.fail(sourceKey(r), clientKey(claimed))
	cs.log.Warn("client authentication failed", "client", logSafe(claimed), "source", sourceKey(r)[len("source "):],
		"path", r.URL.Path, "request_id", page.RequestID(r.Context()))
	return nil, err
}

// logSafe bounds a client-chosen value before it reaches a log line.
func logSafe(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// authenticate does the work of Authenticate and also returns the client id
// the request claimed ("" when it named none, or failed before a secret
// was compared).
func (cs *Clients) authenticate(r *http.Request, form url.Values) (*Client, string, error) {
	auth := r.Header.Values("Authorization")
	if len(auth) > 1 {
		return nil, "", InvalidRequest("more than one Authorization header")
	}
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	id, secret, basic := formID, formSecret, len(auth) == 1
	if basic {
		scheme, cred, _ := strings.Cut(auth[0], " ")
		if !strings.EqualFold(scheme, "Basic") {
			return nil, "", InvalidClient("unsupported client authentication scheme", true)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return nil, "", InvalidClient("malformed Basic credentials", true)
		}
		rawID, rawSecret, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, "", InvalidClient("malformed Basic credentials", true)
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(rawID)
		secret, err2 = url.QueryUnescape(rawSecret)
		if err1 != nil || err2 != nil {
			return nil, "", InvalidClient("malformed Basic credentials", true)
		}
		if formSecret != "" {
			return nil, "", InvalidRequest("use one client authentication method, not both")
		}
		if formID != "" && formID != id {
			return nil, "", InvalidRequest("client_id does not match the authenticated client")
		}
	} else if formID == "" {
		return nil, "", InvalidClient("client authentication required", false)
	}
	c, known := cs.Lookup(id)
	if known && c.Public && !basic && secret == "" {
		return c, "", nil // a public client names itself; no secret to guess
	}
	if wait := cs.failures.wait(sourceKey(r), clientKey(id)); wait > 0 {
		return nil, id, TooManyAttempts(wait)
	}
	switch {
	case known && c.Public:
		return nil, id, InvalidClient("a public client has no secret", basic)
	case !known || !c.secretMatches(secret):
		return nil, id, InvalidClient("client authentication failed", basic)
	}
	return c, "", nil
}

// MinSecretLength is the shortest client secret accepted: 32 characters,
// the hex form of 128 random bits (RFC 6749 §10.10 asks for secrets that
// cannot be guessed; online guessing is also rate-limited).
const MinSecretLength = 32

// CheckSecret refuses a client secret too short to carry 128 bits.
func CheckSecret(secret string) error {
	if len(secret) < MinSecretLength {
		return fmt.Errorf("a client secret must be at least %d characters (128 random bits, e.g. `openssl rand -hex 32`); this one has %d", MinSecretLength, len(secret))
	}
	return nil
}

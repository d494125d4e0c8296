// Package github is ghbroker's upstream client: everything the broker says to
// GitHub (github.com or GitHub Enterprise Server) goes through it.
//
// It owns the OAuth2 web flow against GitHub (the authorize URL with PKCE and
// the code exchange), the REST calls that describe a user (profile, emails,
// organization memberships and teams, with Link-header pagination), and the
// translation of GitHub's wire behaviour — token errors sent with HTTP 200,
// rate limits, outages, OAuth App access restrictions — into typed errors
// that callers branch on with errors.Is and errors.As.
//
// It does not own sessions, the broker's own tokens, storage or policy: it
// hands back a GitHub access token and an [Identity], and the broker decides
// what to do with them. It never logs or returns a GitHub token in an error.
package github

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Defaults applied by [New] to zero [Config] fields.
const (
	// DefaultTimeout bounds a whole request (connect, headers and body) when
	// Config.HTTPClient is nil.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxBodyBytes bounds every REST response body.
	DefaultMaxBodyBytes int64 = 4 << 20
	// DefaultUserAgent is sent when Config.UserAgent is empty. GitHub
	// rejects REST requests without a User-Agent.
	DefaultUserAgent = "ghbroker"
	// DefaultMaxPages caps how many pages one list request follows.
	DefaultMaxPages = 50
)

// apiVersion is the REST API version the response shapes were written
// against, sent as X-GitHub-Api-Version
// (https://docs.github.com/rest/about-the-rest-api/api-versions).
const apiVersion = "2022-11-28"

// Config is the data [New] turns into a [Client].
type Config struct {
	// ClientID is the OAuth App's client id (github.client_id).
	ClientID string
	// ClientSecret is the OAuth App's client secret.
	ClientSecret string
	// WebURL is GitHub's web base (github.url), e.g. https://github.com or
	// https://ghes.example.com; /login/oauth/authorize and
	// /login/oauth/access_token live under it.
	WebURL string
	// APIURL is the REST base (github.api_url), e.g. https://api.github.com
	// or https://ghes.example.com/api/v3. Paths are joined under it.
	APIURL string
	// RedirectURL is the broker's /callback, sent as redirect_uri.
	RedirectURL string
	// HTTPClient makes every request. Nil means a client with a
	// DefaultTimeout overall timeout. The Client uses a copy whose
	// CheckRedirect first refuses any redirect off the requested origin
	// (net/http would forward the token to another port of the same host),
	// then defers to this client's own CheckRedirect.
	HTTPClient *http.Client
	// MaxBodyBytes bounds each REST response body; a larger body is an
	// error wrapping ErrBodyTooLarge. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxPages caps the pages followed for one list; more is an error
	// wrapping ErrTooManyPages. Zero means DefaultMaxPages.
	MaxPages int
	// UserAgent is sent on every request. Empty means DefaultUserAgent.
	UserAgent string
	// Logger receives debug and warning records. Nil discards them.
	Logger *slog.Logger
	// Now is the clock used to turn rate-limit reset times into waits.
	// Nil means time.Now.
	Now func() time.Time
}

// Client talks to one GitHub instance on behalf of one OAuth App. It is safe
// for concurrent use.
type Client struct {
	oauth     oauth2.Config
	web       *url.URL
	api       *url.URL
	http      *http.Client
	maxBody   int64
	maxPages  int
	userAgent string
	log       *slog.Logger
	now       func() time.Time
	etags     *etagCache
}

// New validates cfg, fills its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	var errs []error
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("client id is empty"))
	}
	if cfg.ClientSecret == "" {
		errs = append(errs, errors.New("client secret is empty"))
	}
	web, err := parseBaseURL("web url", cfg.WebURL)
	errs = append(errs, err)
	api, err := parseBaseURL("api url", cfg.APIURL)
	errs = append(errs, err)
	if _, err := parseBaseURL("redirect url", cfg.RedirectURL); err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max body bytes %d is negative", cfg.MaxBodyBytes))
	}
	if cfg.MaxPages < 0 {
		errs = append(errs, fmt.Errorf("max pages %d is negative", cfg.MaxPages))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("github: config: %w", err)
	}

	c := &Client{
		etags:     newETagCache(),
		web:       web,
		api:       api,
		maxBody:   cfg.MaxBodyBytes,
		maxPages:  cfg.MaxPages,
		userAgent: cfg.UserAgent,
		log:       cfg.Logger,
		now:       cfg.Now,
	}
	hc := http.Client{Timeout: DefaultTimeout}
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	hc.CheckRedirect = sameOriginRedirects(hc.CheckRedirect)
	c.http = &hc
	if c.maxBody == 0 {
		c.maxBody = DefaultMaxBodyBytes
	}
	if c.maxPages == 0 {
		c.maxPages = DefaultMaxPages
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.oauth = oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		RedirectURL:  cfg.RedirectURL,
		// read:org for organization and team memberships, user:email
		// for the private primary email address.
		Scopes: []string{"read:org", "user:email"},
		Endpoint: oauth2.Endpoint{
			AuthURL:  web.String() + authorizePath,
			TokenURL: web.String() + tokenPath,
			// GitHub reads client_id and client_secret from the form;
			// fixing the style also avoids x/oauth2's probe, which
			// would send the secret twice.
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
	return c, nil
}

// maxRedirects is net/http's default redirect limit, kept when the caller's
// client has no CheckRedirect of its own.
const maxRedirects = 10

// sameOriginRedirects wraps a CheckRedirect: a redirect that leaves the
// scheme, host and port of the original request is not followed (the 3xx
// comes back as the response), because net/http keeps the Authorization
// header for another port or scheme of the same host. Other redirects —
// GitHub answers 301 or 307 for renamed or moved resources and tells
// clients to follow them — are left to
// next, or to the default limit of 10.
func sameOriginRedirects(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if !sameOrigin(via[0].URL, req.URL) {
			return http.ErrUseLastResponse
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
}

// parseBaseURL accepts an absolute http(s) URL without query or fragment
// and returns it without a trailing slash.
func parseBaseURL(name, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%s is empty", name)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("%s %q: scheme must be https or http", name, raw)
	case u.Host == "":
		return nil, fmt.Errorf("%s %q: no host", name, raw)
	case u.User != nil:
		return nil, fmt.Errorf("%s %q: must not carry credentials", name, raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%s %q: must not have a query or fragment", name, raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u, nil
}

// apiURL joins an escaped path (starting with "/") and an optional query
// under the API base, keeping the base's own path (GHES: /api/v3).
func (c *Client) apiURL(escapedPath string, query url.Values) string {
	s := c.api.String() + escapedPath
	if len(query) > 0 {
		s += "?" + query.Encode()
	}
	return s
}

// OrgApprovalURL returns the page where an owner of org reviews and approves
// OAuth Apps: Settings → Third-party Access → OAuth app policy
// (https://docs.github.com/organizations/managing-oauth-access-to-your-organizations-data/approving-oauth-apps-for-your-organization).
// Show it, with [Client.RequestApprovalURL], to a user whose org is listed
// in Identity.RestrictedOrgs.
func (c *Client) OrgApprovalURL(org string) string {
	return c.web.String() + "/organizations/" + url.PathEscape(org) + "/settings/oauth_application_policy"
}

// RequestApprovalURL returns the page where a user who has authorized this
// OAuth App asks an organization's owners to approve it ("Request access"
// next to the organization;
// https://docs.github.com/account-and-profile/how-tos/organization-membership/requesting-organization-approval-for-oauth-apps).
func (c *Client) RequestApprovalURL() string {
	return c.web.String() + "/settings/connections/applications/" + url.PathEscape(c.oauth.ClientID)
}

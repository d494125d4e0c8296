// Package oidc is the broker's OpenID Connect provider: discovery, the
// JWKS, /authorize, /token (authorization_code, refresh_token and, through
// the DeviceGrant seam, device_code grants),
// /userinfo, /revoke, /introspect, and the RP-initiated logout decision
// that /logout asks it. Sessions belong to package session; a request that
// needs a sign-in is sent to /login with /authorize as its return address,
// so the provider never talks to GitHub's web flow itself.
package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/ghbroker/ghbroker/broker/internal/oauth"
	"github.com/ghbroker/ghbroker/broker/internal/page"
	"github.com/ghbroker/ghbroker/broker/session"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/store"
)

// KeySource is what the provider needs of the signing keys (*keys.Manager).
type KeySource interface {
	// Sign serialises claims as a compact JWS of the given kind.
	Sign(kind claims.Kind, c any) (string, error)
	// JWKS is the published key set as JSON.
	JWKS() []byte
	// PublishedAlgorithms lists the algorithms of the published keys.
	PublishedAlgorithms() []string
}

// TokenVerifier verifies the broker's own tokens (*verify.Verifier).
type TokenVerifier interface {
	// Verify checks an access token at /userinfo and /introspect.
	Verify(token string, kind claims.Kind) (*claims.Claims, error)
	// VerifyIDTokenHint checks an id_token_hint: ours, any audience,
	// expired accepted.
	VerifyIDTokenHint(token string) (*claims.Claims, error)
}

// Store is the persistence the provider uses.
type Store interface {
	store.AuthCodeStore
	store.RefreshStore
}

// DeviceGrant is what /token asks of the device authorization grant
// (*device.Handler). Redeem answers a poll by client for deviceCode: the
// approved authorization, marked redeemed in the same transaction that
// read it, or an *oauth.Error (authorization_pending, slow_down,
// access_denied, expired_token, invalid_grant) that /token writes as it is.
type DeviceGrant interface {
	Redeem(ctx context.Context, clientID, deviceCode string) (store.DeviceCode, error)
}

// Config configures a Provider. Issuer and Keys are required; without
// Sessions the provider serves discovery and the JWKS only.
type Config struct {
	// Issuer is the public base URL, without a trailing slash.
	Issuer string
	// Keys signs tokens and publishes the JWKS.
	Keys KeySource
	// Verifier checks access tokens at /userinfo and /introspect.
	Verifier TokenVerifier
	// Sessions are the sign-in sessions behind codes and refresh tokens.
	Sessions *session.Manager
	// Store keeps codes and refresh families.
	Store Store
	// Clients are the static relying parties.
	Clients []Client
	// DeviceGrant, when set, redeems device codes at /token
	// (urn:ietf:params:oauth:grant-type:device_code, RFC 8628 §3.4).
	DeviceGrant DeviceGrant
	// JWKSMaxAge is the Cache-Control max-age of /keys. It must be shorter
	// than the time a next key is published before it signs. Default 5m.
	JWKSMaxAge time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives provider events. Default discards.
	Logger *slog.Logger
}

// Provider serves the OIDC endpoints.
type Provider struct {
	issuer     string
	keys       KeySource
	verifier   TokenVerifier
	sessions   *session.Manager
	store      Store
	clients    *oauth.Clients
	jwksMaxAge time.Duration
	device     DeviceGrant
	pages      *page.Renderer
	now        func() time.Time
	log        *slog.Logger
}

// New checks cfg and builds the provider.
func New(cfg Config) (*Provider, error) {
	if cfg.Issuer == "" || cfg.Keys == nil {
		return nil, errors.New("oidc: Issuer and Keys are required")
	}
	if u, err := url.Parse(cfg.Issuer); err != nil || u.Host == "" {
		return nil, fmt.Errorf("oidc: issuer %q is not an absolute URL", cfg.Issuer)
	}
	if cfg.Sessions != nil && (cfg.Verifier == nil || cfg.Store == nil) {
		return nil, errors.New("oidc: Verifier and Store are required with Sessions")
	}
	p := &Provider{
		issuer: cfg.Issuer, keys: cfg.Keys, verifier: cfg.Verifier, sessions: cfg.Sessions, store: cfg.Store,
		jwksMaxAge: cfg.JWKSMaxAge, now: cfg.Now, log: cfg.Logger, device: cfg.DeviceGrant,
	}
	var err error
	if p.clients, err = oauth.NewClients(cfg.Clients, cfg.Now, cfg.Logger); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	if p.jwksMaxAge <= 0 {
		p.jwksMaxAge = 5 * time.Minute
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.pages, err = page.NewRenderer(p.log); err != nil {
		return nil, err
	}
	return p, nil
}

// CheckClientSecret refuses a client secret that New would refuse (shorter
// than 128 bits' worth of characters), for check-config.
func CheckClientSecret(secret string) error { return oauth.CheckSecret(secret) }

// Mount adds the provider's routes.
func (p *Provider) Mount(r page.Router) {
	get := []string{http.MethodGet, http.MethodHead}
	r.API("discovery", "/.well-known/openid-configuration", http.HandlerFunc(p.discovery), get...)
	r.API("keys", "/keys", http.HandlerFunc(p.jwks), get...)
	if p.sessions == nil {
		return
	}
	r.Page("authorize", "/authorize", p.authorize, http.MethodGet, http.MethodPost)
	r.API("token", "/token", http.HandlerFunc(p.token), http.MethodPost)
	r.API("userinfo", "/userinfo", http.HandlerFunc(p.userinfo), http.MethodGet, http.MethodPost)
	r.API("revoke", "/revoke", http.HandlerFunc(p.revoke), http.MethodPost)
	r.API("introspect", "/introspect", http.HandlerFunc(p.introspect), http.MethodPost)
}

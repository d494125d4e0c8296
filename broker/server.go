// Package broker is ghbroker's identity provider: the HTTP surface that
// people and relying parties talk to. It serves OIDC discovery and the JWKS,
// signs people in with GitHub, keeps their sessions and (in later files)
// answers the OIDC authorization, token and userinfo endpoints.
//
// It assembles per-concern handlers on one router (router.go is the only
// file that imports gorilla/mux). It does not decide authorization for
// gateways: package authz does, and the command mounts its handler here.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ghbroker/ghbroker/broker/github"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/web"
)

// KeySource is what the broker needs from the signing keys.
type KeySource interface {
	// Sign serialises claims as a compact JWS of the given kind.
	Sign(kind claims.Kind, c any) (string, error)
	// JWKS is the published key set as JSON.
	JWKS() []byte
	// PublishedAlgorithms lists the algorithms of the published keys.
	PublishedAlgorithms() []string
	// LoadedAt is when the key set was last loaded (zero: never).
	LoadedAt() time.Time
	// PublicKey returns a published key by kid.
	PublicKey(kid string) (jose.JSONWebKey, bool)
}

// TokenVerifier verifies the broker's own tokens (authz.Verifier).
type TokenVerifier interface {
	Verify(token string, kind claims.Kind) (*claims.Claims, error)
}

// GitHub is the upstream identity provider (*github.Client).
type GitHub interface {
	AuthCodeURL(state, verifier, loginHint string) string
	Exchange(ctx context.Context, code, verifier string) (string, error)
	FetchIdentity(ctx context.Context, token string, allowedOrgs []string) (*github.Identity, error)
	OrgApprovalURL(org string) string
}

// Store is the persistence the broker uses.
type Store interface {
	store.KeyStore
	store.SecretStore
	store.SessionStore
	store.LoginStateStore
	store.AuthCodeStore
	store.RefreshStore
}

// SessionOptions configure the SSO session.
type SessionOptions struct {
	// CookieName names the session cookie. Default "_ghbroker".
	CookieName string
	// CookieDomain is the SSO cookie's Domain ("" = issuer host only).
	CookieDomain string
	// TTL is the session token's lifetime. Default 1h.
	TTL time.Duration
	// MaxAge is the server-side session's lifetime. Default 168h.
	MaxAge time.Duration
	// AllowedRedirectDomains: where rd may point (".example.com" or a host).
	AllowedRedirectDomains []string
	// PolicyGroups are the groups some authz rule names. When a user's
	// groups do not fit the cookie budget, the session token keeps org
	// entries and these, so every rule still decides correctly.
	PolicyGroups []string
}

// GitHubOptions configure sign-in with GitHub.
type GitHubOptions struct {
	// Client talks to GitHub. Required for sign-in.
	Client GitHub
	// AllowedOrgs: signing in requires membership of one of them.
	AllowedOrgs []string
	// GroupsFormat is "github" (org/team) or "dex" (org:team).
	GroupsFormat string
}

// Options configure a Server. Issuer, Keys and Store are required.
type Options struct {
	// Issuer is the public base URL, without a trailing slash.
	Issuer string
	// Keys signs and publishes keys.
	Keys KeySource
	// Verifier checks the broker's own session tokens. Required for sign-in.
	Verifier TokenVerifier
	// Store persists sessions and codes.
	Store Store
	// Session configures the SSO cookie and sessions.
	Session SessionOptions
	// GitHub configures the upstream.
	GitHub GitHubOptions
	// Clients are the static OIDC relying parties.
	Clients []Client
	// JWKSMaxAge is the Cache-Control max-age of /keys. It must be shorter
	// than the time a next key is published before it signs.
	JWKSMaxAge time.Duration
	// Authz, when set, is mounted at /authz and /authz/{rest}.
	Authz http.Handler
	// ExtraHosts maps "host:port" names to their own handlers (the dev
	// GitHub emulator and demo services); every other Host is the broker's.
	ExtraHosts map[string]http.Handler
	// Registry receives the broker's metrics.
	Registry prometheus.Registerer
	// Gatherer is served at /metrics.
	Gatherer prometheus.Gatherer
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives request logs. Default discards.
	Logger *slog.Logger
}

// Server is the broker's HTTP surface.
type Server struct {
	opts    Options
	issuer  *url.URL
	handler http.Handler
	metrics *httpMetrics
	pages   *web.Pages
	// secure is false only for a loopback http issuer (dev).
	secure bool
	// sealer encrypts GitHub tokens at rest.
	sealer *sealer
	// clients by id.
	clients map[string]*Client
	// resumeAuthorize, when set, continues an OIDC authorization request
	// after a GitHub sign-in.
	resumeAuthorize func(w http.ResponseWriter, r *http.Request, areq store.AuthRequest, sess store.Session)
}

// New validates opts and assembles the routes.
func New(opts Options) (*Server, error) {
	if opts.Issuer == "" || opts.Keys == nil || opts.Store == nil {
		return nil, errors.New("broker: Issuer, Keys and Store are required")
	}
	iss, err := url.Parse(opts.Issuer)
	if err != nil || iss.Host == "" {
		return nil, fmt.Errorf("broker: issuer %q is not an absolute URL", opts.Issuer)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		r := prometheus.NewRegistry()
		opts.Registry, opts.Gatherer = r, r
	}
	if opts.JWKSMaxAge <= 0 {
		opts.JWKSMaxAge = 5 * time.Minute
	}
	s := &opts.Session
	if s.CookieName == "" {
		s.CookieName = "_ghbroker"
	}
	if s.TTL <= 0 {
		s.TTL = time.Hour
	}
	if s.MaxAge <= 0 {
		s.MaxAge = 168 * time.Hour
	}
	pages, err := web.Parse()
	if err != nil {
		return nil, fmt.Errorf("broker: templates: %w", err)
	}
	srv := &Server{opts: opts, issuer: iss, pages: pages, secure: iss.Scheme == "https"}
	if srv.sealer, err = newSealer(context.Background(), opts.Store); err != nil {
		return nil, err
	}
	srv.clients = map[string]*Client{}
	for i := range opts.Clients {
		c := &opts.Clients[i]
		if _, dup := srv.clients[c.ID]; dup || c.ID == "" {
			return nil, fmt.Errorf("broker: client id %q is empty or duplicated", c.ID)
		}
		srv.clients[c.ID] = c
	}
	srv.resumeAuthorize = srv.resumeAfterSignIn
	m, err := newHTTPMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	srv.metrics = m
	srv.handler = srv.routes()
	return srv, nil
}

// ServeHTTP serves every broker route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// signInEnabled reports whether GitHub sign-in is wired.
func (s *Server) signInEnabled() bool {
	return s.opts.GitHub.Client != nil && s.opts.Verifier != nil
}

// ready reports why the server cannot serve, or nil: the store answers
// and signing keys are loaded.
func (s *Server) ready(ctx context.Context) error {
	if s.opts.Keys.LoadedAt().IsZero() {
		return errors.New("signing keys not loaded")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.opts.Store.GetKeys(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Package signin is gateway single sign-on: /login (silent renewal or a
// GitHub round trip), /callback (GitHub's redirect URI), /logout, the
// signed-in page and the pages that refuse a person and say why. Sessions
// themselves belong to package session; OIDC authorization requests come
// here as an rd back to /authorize, so this package knows nothing of OIDC
// beyond the EndSession question it asks at /logout.
package signin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/ghbroker/ghbroker/broker/github"
	"github.com/ghbroker/ghbroker/broker/internal/page"
	"github.com/ghbroker/ghbroker/broker/session"
	"github.com/ghbroker/ghbroker/store"
)

// GitHub is what sign-in needs of the upstream (*github.Client).
type GitHub interface {
	AuthCodeURL(state, verifier, loginHint string, selectAccount bool) string
	Exchange(ctx context.Context, code, verifier string) (string, error)
	FetchIdentity(ctx context.Context, token string, allowedOrgs []string) (*github.Identity, error)
	OrgApprovalURL(org string) string
}

// EndSession decides where an OIDC RP-initiated logout returns (the OIDC
// provider implements it): the post_logout_redirect_uri when it is
// registered for the client that the id_token_hint or client_id names.
// hintSubject is the subject of a valid id_token_hint, "" without one.
type EndSession interface {
	LogoutTarget(form url.Values) (target string, redirect bool, hintSubject string)
}

// Config configures a Handler. Issuer, Sessions, Store, GitHub and Pages
// are required.
type Config struct {
	// Issuer is the broker's public URL.
	Issuer string
	// Sessions mints, renews and ends sessions.
	Sessions *session.Manager
	// Store keeps the rotating key that seals pending sign-ins into their
	// cookies (nothing else of a sign-in is stored before /callback).
	Store store.SecretStore
	// GitHub is the upstream identity provider.
	GitHub GitHub
	// AllowedRedirectDomains: where rd may point (".example.com" or a host).
	AllowedRedirectDomains []string
	// EndSession answers RP-initiated logout; nil refuses every
	// post_logout_redirect_uri.
	EndSession EndSession
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives sign-in events. Default discards.
	Logger *slog.Logger
}

// Handler serves gateway sign-in.
type Handler struct {
	issuer     string
	sessions   *session.Manager
	states     *stateSealer
	secure     bool
	github     GitHub
	redirects  *redirects
	endSession EndSession
	pages      *page.Renderer
	now        func() time.Time
	log        *slog.Logger
}

// New checks cfg and builds the handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Issuer == "" || cfg.Sessions == nil || cfg.Store == nil || cfg.GitHub == nil {
		return nil, errors.New("signin: Issuer, Sessions, Store and GitHub are required")
	}
	rd, err := newRedirects(cfg.Issuer, cfg.AllowedRedirectDomains)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		issuer: cfg.Issuer, sessions: cfg.Sessions, states: newStateSealer(cfg.Store), secure: page.SecureIssuer(cfg.Issuer), github: cfg.GitHub, redirects: rd,
		endSession: cfg.EndSession, now: cfg.Now, log: cfg.Logger,
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.pages, err = page.NewRenderer(h.log); err != nil {
		return nil, err
	}
	return h, nil
}

// Mount adds the sign-in routes.
func (h *Handler) Mount(r page.Router) {
	get := []string{http.MethodGet, http.MethodHead}
	r.Page("home", "/", h.home, get...)
	r.Page("login", "/login", h.login, get...)
	r.Page("callback", "/callback", h.callback, get...)
	r.Page("logout", "/logout", h.logout, http.MethodGet, http.MethodPost)
}

// LoginURL is the /login URL that returns to rd.
func LoginURL(rd string) string {
	return "/login?rd=" + url.QueryEscape(rd)
}

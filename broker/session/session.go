// Package session owns the broker's sign-in sessions: the server-side
// session record, the stateless session token (minting, trimming to the
// cookie budget, sliding), the SSO and renewal cookies (chunks included),
// sealing the GitHub token at rest, and re-reading a person's memberships
// from GitHub (silent renewal and the refresh grant both go through
// Reread). It serves no HTTP routes: the sign-in and OIDC handlers, and
// the gRPC check, call it.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ghbroker/ghbroker/broker/github"
	"github.com/ghbroker/ghbroker/broker/internal/secret"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/internal/sessioncookie"
	"github.com/ghbroker/ghbroker/revocation"
	"github.com/ghbroker/ghbroker/store"
)

// Signer signs the broker's tokens (*keys.Manager).
type Signer interface {
	Sign(kind claims.Kind, c any) (string, error)
}

// Verifier checks the broker's own session tokens.
type Verifier interface {
	Verify(token string, kind claims.Kind) (*claims.Claims, error)
}

// IdentityReader reads who a GitHub token belongs to and what they are a
// member of (*github.Client).
type IdentityReader interface {
	FetchIdentity(ctx context.Context, token string, allowedOrgs []string) (*github.Identity, error)
}

// EndListener hears of every session that ends (*oidc.Backchannel tells
// the relying parties).
type EndListener interface {
	SessionEnded(sess store.Session)
}

// Revocations is the broker's revocation set (*revocation.Set, or the
// store-backed one shared by replicas): every check refuses what it holds.
type Revocations interface {
	Add(e revocation.Entry) (uint64, error)
	Revoked(sub, sid string, iatMillis int64) bool
}

// Store is the persistence sessions use.
type Store interface {
	store.SessionStore
	store.SessionLister
	store.SecretStore
}

// Config configures a Manager. Issuer, Signer, Verifier, Store and GitHub
// are required.
type Config struct {
	// Issuer is the broker's public URL: the iss and aud of session tokens.
	Issuer string
	// Signer signs session tokens.
	Signer Signer
	// Verifier checks session tokens presented in cookies.
	Verifier Verifier
	// Store keeps sessions and the token-sealing key.
	Store Store
	// GitHub re-reads memberships at renewal.
	GitHub IdentityReader
	// AllowedOrgs: a session requires membership of one of them.
	AllowedOrgs []string
	// GroupsFormat is "github" (org/team, the default) or "dex" (org:team).
	GroupsFormat string
	// CookieName names the SSO cookie. Default "_ghbroker".
	CookieName string
	// CookieDomain is the SSO cookie's Domain ("" = issuer host only).
	CookieDomain string
	// TTL is the session token's lifetime. Default 1h.
	TTL time.Duration
	// MaxAge is the server-side session's lifetime. Default 168h.
	MaxAge time.Duration
	// PolicyGroups are the groups some authz rule names. When a user's
	// groups do not fit the cookie budget, the session token keeps org
	// entries and these, so every rule still decides correctly.
	PolicyGroups []string
	// Ended, when set, hears of every session that ends.
	Ended EndListener
	// Revocations, when set, receives a revocation for every session that
	// ends and every person who is no longer admitted, so that their
	// tokens stop working at every check at once.
	Revocations Revocations
	// MaxTokenLifetime is the longest any token of a session can live
	// (session and access tokens alike): how long a revocation is kept.
	// Default twice TTL (a slid session token's cap).
	MaxTokenLifetime time.Duration
	// SealKey, when set, is the 32-byte key that seals GitHub tokens,
	// kept outside the store (ParseSealKey reads one); otherwise a key in
	// the store does.
	SealKey []byte
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives session events. Default discards.
	Logger *slog.Logger
}

// Manager mints, renews, slides and ends sessions.
type Manager struct {
	issuer       string
	signer       Signer
	verifier     Verifier
	store        Store
	github       IdentityReader
	allowedOrgs  []string
	groupsFormat string
	cookieName   string
	cookieDomain string
	secure       bool
	ttl, maxAge  time.Duration
	policyGroups []string
	now          func() time.Time
	log          *slog.Logger
	sealer       *sealer
	csrfKey      []byte
	ended        EndListener
	revocations  Revocations
	maxTokenLife time.Duration
}

// New checks cfg and loads (or creates) the token-sealing key.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Issuer == "" || cfg.Signer == nil || cfg.Verifier == nil || cfg.Store == nil || cfg.GitHub == nil {
		return nil, errors.New("session: Issuer, Signer, Verifier, Store and GitHub are required")
	}
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || iss.Host == "" {
		return nil, fmt.Errorf("session: issuer %q is not an absolute URL", cfg.Issuer)
	}
	m := &Manager{
		issuer: cfg.Issuer, signer: cfg.Signer, verifier: cfg.Verifier, store: cfg.Store, github: cfg.GitHub,
		allowedOrgs: cfg.AllowedOrgs, groupsFormat: cfg.GroupsFormat,
		cookieName: cfg.CookieName, cookieDomain: cfg.CookieDomain, secure: iss.Scheme == "https",
		ttl: cfg.TTL, maxAge: cfg.MaxAge, policyGroups: cfg.PolicyGroups, now: cfg.Now, log: cfg.Logger, ended: cfg.Ended,
		revocations: cfg.Revocations, maxTokenLife: cfg.MaxTokenLifetime,
	}
	if m.cookieName == "" {
		m.cookieName = "_ghbroker"
	}
	if m.groupsFormat == "" {
		m.groupsFormat = "github"
	}
	if m.ttl <= 0 {
		m.ttl = time.Hour
	}
	if m.maxAge <= 0 {
		m.maxAge = 168 * time.Hour
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.maxTokenLife = max(m.maxTokenLife, 2*m.ttl)
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.sealer, err = newSealer(ctx, cfg.Store, cfg.SealKey); err != nil {
		return nil, err
	}
	if m.csrfKey, err = loadCSRFKey(ctx, cfg.Store); err != nil {
		return nil, err
	}
	return m, nil
}

// TTL is the session token's lifetime.
func (m *Manager) TTL() time.Duration { return m.ttl }

// MaxAge is the server-side session's lifetime.
func (m *Manager) MaxAge() time.Duration { return m.maxAge }

// CookieName is the SSO cookie's name; other broker cookies derive theirs
// from it.
func (m *Manager) CookieName() string { return m.cookieName }

// Current returns the claims of the request's valid session token, or nil.
// A revoked token is not valid: /login then renews it (re-reading GitHub)
// instead of sending the browser back to a check that refuses it.
func (m *Manager) Current(r *http.Request) *claims.Claims {
	for _, tok := range sessioncookie.Candidates(r.Header["Cookie"], m.cookieName) {
		if c, err := m.verifier.Verify(tok, claims.KindSession); err == nil && !m.Revoked(c) {
			return c
		}
	}
	return nil
}

// Revoked reports whether the revocation set refuses the token c.
func (m *Manager) Revoked(c *claims.Claims) bool {
	return m.revocations != nil && m.revocations.Revoked(c.Subject, c.SessionID, c.IssuedAtMs())
}

// Renewable returns the server-side session named by the request's
// renewal cookie, when its secret matches and it has not expired.
func (m *Manager) Renewable(ctx context.Context, r *http.Request) (store.Session, bool) {
	c, err := r.Cookie(m.sidCookieName())
	if err != nil {
		return store.Session{}, false
	}
	id, sec, ok := strings.Cut(c.Value, ".")
	if !ok || id == "" || sec == "" || len(c.Value) > 200 {
		return store.Session{}, false
	}
	sess, err := m.store.GetSession(ctx, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			m.log.Warn("reading session failed", "err", err)
		}
		return store.Session{}, false
	}
	if !sess.SignedOut.IsZero() || !secret.Matches(sess.SecretHash, sec) {
		return store.Session{}, false
	}
	return sess, true
}

// Get returns a live server-side session; a signed-out one reads as
// store.ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (store.Session, error) {
	s, err := m.store.GetSession(ctx, id)
	if err == nil && !s.SignedOut.IsZero() {
		return store.Session{}, fmt.Errorf("session: %s signed out: %w", id, store.ErrNotFound)
	}
	return s, err
}

// GetForRefresh returns the session behind a refresh family: a signed-out
// session still serves a family granted with offline_access.
func (m *Manager) GetForRefresh(ctx context.Context, id string, offline bool) (store.Session, error) {
	if offline {
		return m.store.GetSession(ctx, id)
	}
	return m.Get(ctx, id)
}

// GetForToken returns the session of a token (/userinfo): a signed-out
// session answers only for tokens minted after the sign-out (offline
// refresh).
func (m *Manager) GetForToken(ctx context.Context, c *claims.Claims) (store.Session, error) {
	s, err := m.store.GetSession(ctx, c.SessionID)
	if err == nil && !s.SignedOut.IsZero() && c.IssuedAtMs() < s.SignedOut.UnixMilli() {
		return store.Session{}, fmt.Errorf("session: %s signed out: %w", c.SessionID, store.ErrNotFound)
	}
	return s, err
}

// SignOut ends the browser's session id everywhere (a sign-out): its
// tokens issued before now are refused, its renewal cookie stops working,
// relying parties are told, and the refresh tokens granted without
// offline_access end; the record stays, without its renewal secret, until
// it expires, for the offline_access ones.
func (m *Manager) SignOut(ctx context.Context, id string) {
	now := m.now()
	m.revoke(revocation.Entry{Session: id, Before: revocation.Millis(now), Source: "logout"})
	var ended store.Session
	err := m.store.UpdateSession(ctx, id, func(s store.Session) (store.Session, error) {
		s.SecretHash = ""
		if s.SignedOut.IsZero() {
			s.SignedOut = now
		}
		ended = s
		return s, nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			m.log.Warn("signing a session out failed", "err", err)
		}
		return
	}
	if m.ended != nil {
		m.ended.SessionEnded(ended)
	}
}

// Alive reports whether the server-side session id still exists.
func (m *Manager) Alive(ctx context.Context, id string) bool {
	if id == "" {
		return false
	}
	_, err := m.Get(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Warn("reading session failed", "err", err)
	}
	return err == nil
}

// End ends a server-side session, revokes its tokens everywhere (source
// says why, for the metrics: "logout", "renewal", "operator", "webhook")
// and tells the EndListener; failures are logged. Ending a session that
// does not exist still revokes it.
func (m *Manager) End(ctx context.Context, id, source string) {
	m.revoke(revocation.Entry{Session: id, Source: source})
	sess, err := m.store.GetSession(ctx, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			m.log.Warn("reading a session to end failed", "err", err)
		}
		return
	}
	if err := m.store.DeleteSession(ctx, id); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			m.log.Warn("deleting session failed", "err", err)
		}
		return
	}
	if m.ended != nil {
		m.ended.SessionEnded(sess)
	}
}

// RevokeSubject refuses every token of subject issued before now, at
// every check (a person removed from an org or a team: silent renewal
// mints tokens with their current groups).
func (m *Manager) RevokeSubject(subject, source string) {
	m.revoke(revocation.Entry{Subject: subject, Before: revocation.Millis(m.now()), Source: source})
}

func (m *Manager) revoke(e revocation.Entry) {
	if m.revocations == nil || (e.Session == "" && e.Subject == "") {
		return
	}
	e.Expires = revocation.Millis(m.now().Add(m.maxTokenLife))
	if _, err := m.revocations.Add(e); err != nil {
		m.log.Error("recording a revocation failed", "source", e.Source, "err", err)
	}
}

// AddRelyingParty records that client received tokens of session id, so
// that it is told when the session ends.
func (m *Manager) AddRelyingParty(ctx context.Context, id, client string) error {
	return m.store.UpdateSession(ctx, id, func(s store.Session) (store.Session, error) {
		if !slices.Contains(s.RelyingParties, client) {
			s.RelyingParties = append(s.RelyingParties, client)
		}
		return s, nil
	})
}

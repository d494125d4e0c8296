package broker

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/internal/sessioncookie"
	"github.com/ghbroker/ghbroker/store"
)

// sessionTokenBudget is the most bytes a session token may take before its
// groups are trimmed to those the policy names: one cookie.
const sessionTokenBudget = sessioncookie.MaxChunkValue

// maxSessionToken is the largest session token the authz verifier accepts
// (its default MaxTokenBytes); beyond it the token keeps org groups only.
const maxSessionToken = 16 << 10

// sidCookie carries "id.secret" for silent renewal: host-only on the
// issuer, never sent to other services.
func (s *Server) sidCookieName() string { return s.opts.Session.CookieName + "_sid" }

// bindCookie binds a pending GitHub round trip to the browser that began it.
func (s *Server) bindCookieName() string { return s.opts.Session.CookieName + "_login" }

func (s *Server) ssoAttrs(maxAge time.Duration) sessioncookie.Attrs {
	return sessioncookie.Attrs{Domain: s.opts.Session.CookieDomain, Secure: s.secure, MaxAge: int(maxAge.Seconds())}
}

// hostCookie is a cookie for the issuer's host only.
func (s *Server) hostCookie(name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		c.MaxAge = int(maxAge.Seconds())
	} else {
		c.MaxAge = -1
	}
	return c
}

// hashSecret is the stored form of a bearer secret (state, renewal secret).
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// currentSession returns the claims of the request's valid session token,
// or nil.
func (s *Server) currentSession(r *http.Request) *claims.Claims {
	if s.opts.Verifier == nil {
		return nil
	}
	for _, tok := range sessioncookie.Candidates(r.Header["Cookie"], s.opts.Session.CookieName) {
		if c, err := s.opts.Verifier.Verify(tok, claims.KindSession); err == nil {
			return c
		}
	}
	return nil
}

// renewable returns the server-side session named by the request's
// session-id cookie, when its secret matches and it has not expired.
func (s *Server) renewable(ctx context.Context, r *http.Request) (store.Session, bool) {
	c, err := r.Cookie(s.sidCookieName())
	if err != nil {
		return store.Session{}, false
	}
	id, secret, ok := strings.Cut(c.Value, ".")
	if !ok || id == "" || secret == "" || len(c.Value) > 200 {
		return store.Session{}, false
	}
	sess, err := s.opts.Store.GetSession(ctx, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.opts.Logger.Warn("reading session failed", "err", err)
		}
		return store.Session{}, false
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(sess.SecretHash)) != 1 {
		return store.Session{}, false
	}
	return sess, true
}

// sessionClaims are the claims of a session token for sess.
func (s *Server) sessionClaims(sess store.Session, now time.Time, groups []string) *claims.Claims {
	verified := sess.EmailVerified
	exp := now.Add(s.opts.Session.TTL)
	if sess.Expires.Before(exp) {
		exp = sess.Expires // never outlive the server-side session
	}
	c := &claims.Claims{
		Claims: jwt.Claims{
			Issuer:   s.opts.Issuer,
			Subject:  sess.Subject,
			Audience: jwt.Audience{s.opts.Issuer},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(exp),
			ID:       randomToken(12),
		},
		AuthTime:          jwt.NewNumericDate(sess.AuthTime),
		SessionID:         sess.ID,
		PreferredUsername: sess.Login,
		Name:              sess.Name,
		Email:             sess.Email,
		Picture:           sess.Picture,
		Groups:            groups,
	}
	if sess.Email != "" {
		c.EmailVerified = &verified
	}
	return c
}

// mintSession signs a session token for sess. When all of the user's groups
// do not fit one cookie, the token keeps the org entries and the groups that
// some policy rule names (the only ones a check can test); if even that does
// not fit, the cookie is split into chunks.
func (s *Server) mintSession(sess store.Session, now time.Time) (string, error) {
	tok, err := s.opts.Keys.Sign(claims.KindSession, s.sessionClaims(sess, now, sess.Groups))
	if err != nil || len(tok) <= sessionTokenBudget {
		return tok, err
	}
	var kept []string
	for _, g := range sess.Groups {
		if !strings.ContainsAny(g, "/:") || slices.ContainsFunc(s.opts.Session.PolicyGroups, func(p string) bool { return strings.EqualFold(p, g) }) {
			kept = append(kept, g)
		}
	}
	s.opts.Logger.Info("session token over the cookie budget: keeping org and policy groups only",
		"login", sess.Login, "groups", len(sess.Groups), "kept", len(kept))
	tok, err = s.opts.Keys.Sign(claims.KindSession, s.sessionClaims(sess, now, kept))
	if err != nil || len(tok) <= maxSessionToken {
		return tok, err
	}
	// The policy names more of this user's teams than a verifier accepts
	// in one token: keep the orgs only, so the user can still sign in.
	orgs := slices.DeleteFunc(slices.Clone(kept), func(g string) bool { return strings.ContainsAny(g, "/:") })
	s.opts.Logger.Warn("session token over the verifier's size limit: keeping org groups only; team rules will not match this user",
		"login", sess.Login, "kept", len(orgs))
	return s.opts.Keys.Sign(claims.KindSession, s.sessionClaims(sess, now, orgs))
}

// setSessionCookies writes the SSO cookie (chunked when large) and the
// host-only renewal cookie.
func (s *Server) setSessionCookies(w http.ResponseWriter, r *http.Request, token string, sidValue string) {
	for _, c := range sessioncookie.Split(r, s.opts.Session.CookieName, token, s.ssoAttrs(s.opts.Session.TTL)) {
		http.SetCookie(w, c)
	}
	if sidValue != "" {
		http.SetCookie(w, s.hostCookie(s.sidCookieName(), sidValue, s.opts.Session.MaxAge))
	}
}

// clearSessionCookies expires the SSO cookie, its chunks and the renewal
// cookie.
func (s *Server) clearSessionCookies(w http.ResponseWriter, r *http.Request) {
	for _, c := range sessioncookie.Clear(r, s.opts.Session.CookieName, s.ssoAttrs(0)) {
		http.SetCookie(w, c)
	}
	http.SetCookie(w, s.hostCookie(s.sidCookieName(), "", 0))
}

// newSession creates the server-side session for a fresh GitHub sign-in
// and returns it with the renewal cookie's value.
func (s *Server) newSession(ctx context.Context, sess store.Session) (store.Session, string, error) {
	secret := randomToken(32)
	if sess.ID == "" {
		sess.ID = randomToken(16)
	}
	sess.SecretHash = hashSecret(secret)
	if err := s.opts.Store.CreateSession(ctx, sess); err != nil {
		return sess, "", fmt.Errorf("broker: create session: %w", err)
	}
	return sess, sess.ID + "." + secret, nil
}

// SlideSession returns Set-Cookie values carrying a fresh session token when
// the presented one is close to expiry (less than a quarter of
// session.ttl left), for the gRPC check to send to the browser on an
// allowed request (Envoy's response_headers_to_add). It reads no store and
// calls no GitHub: the new token keeps the memberships of the old one, so
// its lifetime is capped at twice session.ttl after those memberships were
// read (the token's iat, which sliding preserves); past that, the browser
// goes through /login, which re-reads them. Nil means nothing to send.
func (s *Server) SlideSession(c *claims.Claims, token string) []string {
	if c == nil || c.Expiry == nil || c.IssuedAt == nil {
		return nil
	}
	now, ttl := s.opts.Now(), s.opts.Session.TTL
	exp := c.Expiry.Time()
	if exp.Sub(now) > ttl/4 {
		return nil
	}
	newExp := now.Add(ttl)
	if limit := c.IssuedAt.Time().Add(2 * ttl); newExp.After(limit) {
		newExp = limit
	}
	if !newExp.After(exp) {
		return nil
	}
	nc := *c
	nc.Expiry = jwt.NewNumericDate(newExp)
	nc.ID = randomToken(12)
	tok, err := s.opts.Keys.Sign(claims.KindSession, &nc)
	if err != nil {
		s.opts.Logger.Warn("sliding the session failed", "err", err)
		return nil
	}
	// Only the cookies that carry the token: the same claims give a token of
	// the same size, so the browser's chunks are all overwritten.
	noCookies := &http.Request{Header: http.Header{}}
	var out []string
	for _, ck := range sessioncookie.Split(noCookies, s.opts.Session.CookieName, tok, s.ssoAttrs(ttl)) {
		out = append(out, ck.String())
	}
	return out
}

package session

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ghbroker/ghbroker/broker/internal/secret"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/internal/sessioncookie"
	"github.com/ghbroker/ghbroker/store"
)

// tokenBudget is the most bytes a session token may take before its groups
// are trimmed to those the policy names: one cookie.
const tokenBudget = sessioncookie.MaxChunkValue

// maxToken is the largest session token the authz verifier accepts (its
// default MaxTokenBytes); beyond it the token keeps org groups only.
const maxToken = 16 << 10

// claimsFor are the claims of a session token for sess.
func (m *Manager) claimsFor(sess store.Session, now time.Time, groups []string) *claims.Claims {
	verified := sess.EmailVerified
	exp := now.Add(m.ttl)
	if sess.Expires.Before(exp) {
		exp = sess.Expires // never outlive the server-side session
	}
	c := &claims.Claims{
		Claims: jwt.Claims{
			Issuer:   m.issuer,
			Subject:  sess.Subject,
			Audience: jwt.Audience{m.issuer},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(exp),
			ID:       secret.Random(12),
		},
		IssuedAtMillis:    now.UnixMilli(),
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

// Mint signs a session token for sess. When all of the user's groups do
// not fit one cookie, the token keeps the org entries and the groups that
// some policy rule names (the only ones a check can test); if even that
// does not fit, the cookie is split into chunks.
func (m *Manager) Mint(sess store.Session) (string, error) {
	now := m.now()
	tok, err := m.signer.Sign(claims.KindSession, m.claimsFor(sess, now, sess.Groups))
	if err != nil || len(tok) <= tokenBudget {
		return tok, err
	}
	var kept []string
	for _, g := range sess.Groups {
		if !strings.ContainsAny(g, "/:") || slices.ContainsFunc(m.policyGroups, func(p string) bool { return strings.EqualFold(p, g) }) {
			kept = append(kept, g)
		}
	}
	m.log.Info("session token over the cookie budget: keeping org and policy groups only",
		"login", sess.Login, "groups", len(sess.Groups), "kept", len(kept))
	tok, err = m.signer.Sign(claims.KindSession, m.claimsFor(sess, now, kept))
	if err != nil || len(tok) <= maxToken {
		return tok, err
	}
	// The policy names more of this user's teams than a verifier accepts
	// in one token: keep the orgs only, so the user can still sign in.
	orgs := slices.DeleteFunc(slices.Clone(kept), func(g string) bool { return strings.ContainsAny(g, "/:") })
	m.log.Warn("session token over the verifier's size limit: keeping org groups only; team rules will not match this user",
		"login", sess.Login, "kept", len(orgs))
	return m.signer.Sign(claims.KindSession, m.claimsFor(sess, now, orgs))
}

// Slide returns Set-Cookie values carrying a fresh session token when the
// presented one is close to expiry (less than a quarter of the TTL left),
// for the gRPC check to send to the browser on an allowed request (Envoy's
// response_headers_to_add). It reads no store and calls no GitHub: the new
// token keeps the memberships of the old one, so its lifetime is capped at
// twice the TTL after those memberships were read (the token's iat, which
// sliding preserves); past that, the browser goes through /login, which
// re-reads them. Nil means nothing to send.
func (m *Manager) Slide(c *claims.Claims, token string) []string {
	if c == nil || c.Expiry == nil || c.IssuedAt == nil {
		return nil
	}
	now, ttl := m.now(), m.ttl
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
	nc.ID = secret.Random(12)
	tok, err := m.signer.Sign(claims.KindSession, &nc)
	if err != nil {
		m.log.Warn("sliding the session failed", "err", err)
		return nil
	}
	// Only the cookies that carry the token: the same claims give a token of
	// the same size, so the browser's chunks are all overwritten.
	noCookies := &http.Request{Header: http.Header{}}
	var out []string
	for _, ck := range sessioncookie.Split(noCookies, m.cookieName, tok, m.ssoAttrs(ttl)) {
		out = append(out, ck.String())
	}
	return out
}

package oidc

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/store"
)

// userinfo is the OIDC UserInfo endpoint (OIDC Core §5.3): GET or POST,
// with the access token as a Bearer header or (POST only) as the
// access_token form field (RFC 6750 §2). Errors go in WWW-Authenticate.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	tok, fail := bearerToken(w, r)
	if fail != "" {
		p.bearerError(w, http.StatusBadRequest, "invalid_request", fail)
		return
	}
	if tok == "" {
		p.bearerError(w, http.StatusUnauthorized, "", "")
		return
	}
	c, err := p.verifier.Verify(tok, claims.KindAccess)
	if err != nil {
		p.bearerError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid or expired")
		return
	}
	// The access token is stateless, but /userinfo has the store: a token
	// of a session that was signed out no longer answers here.
	sess, err := p.sessions.GetForToken(r.Context(), c)
	switch {
	case c.SessionID == "" || p.sessions.Revoked(c) || errors.Is(err, store.ErrNotFound):
		p.bearerError(w, http.StatusUnauthorized, "invalid_token", "the session has ended")
		return
	case err != nil:
		p.writeOAuthError(w, r, err) // 503 while the store is unavailable
		return
	}
	scopes := strings.Fields(c.Scope)
	out := map[string]any{"sub": c.Subject}
	if slices.Contains(scopes, "profile") {
		out["preferred_username"] = c.PreferredUsername
		out["login"] = c.PreferredUsername // what Grafana reads by default
		out["name"] = c.Name
		out["picture"] = c.Picture
	}
	// The stored session is the freshest view (renewals update it).
	if slices.Contains(scopes, "profile") {
		out["name"], out["picture"] = sess.Name, sess.Picture
	}
	if slices.Contains(scopes, "email") && sess.Email != "" {
		out["email"], out["email_verified"] = sess.Email, sess.EmailVerified
	}
	if slices.Contains(scopes, "groups") {
		out["groups"] = c.Groups
	}
	writeJSON(w, http.StatusOK, out)
}

// bearerToken extracts an RFC 6750 bearer token from the Authorization
// header or a POST form body; a request that uses both, or repeats either,
// is malformed.
func bearerToken(w http.ResponseWriter, r *http.Request) (token, fail string) {
	auth := r.Header.Values("Authorization")
	if len(auth) > 1 {
		return "", "more than one Authorization header"
	}
	if len(auth) == 1 {
		scheme, t, ok := strings.Cut(auth[0], " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(t) == "" {
			return "", "the Authorization header is not a Bearer token"
		}
		token = strings.TrimSpace(t)
	}
	if r.Method == http.MethodPost && strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/x-www-form-urlencoded") {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			return "", "the form could not be read"
		}
		if v := r.PostForm["access_token"]; len(v) > 0 {
			if len(v) > 1 || token != "" {
				return "", "send the access token once"
			}
			token = v[0]
		}
	}
	return token, ""
}

// bearerError answers with an RFC 6750 §3 challenge.
func (p *Provider) bearerError(w http.ResponseWriter, status int, code, desc string) {
	v := `Bearer realm="` + p.issuer + `"`
	if code != "" {
		v += `, error="` + code + `"`
		if desc != "" {
			v += `, error_description="` + desc + `"`
		}
	}
	w.Header().Set("WWW-Authenticate", v)
	body := map[string]string{}
	if code != "" {
		body["error"], body["error_description"] = code, desc
	}
	writeJSON(w, status, body)
}

package oidc

import (
	"net/http"
	"strings"

	"github.com/ghbroker/ghbroker/broker/internal/oauth"
	"github.com/ghbroker/ghbroker/broker/internal/secret"
	"github.com/ghbroker/ghbroker/claims"
)

// revoke is the RFC 7009 revocation endpoint. It answers 200 for unknown
// and invalid tokens. Revoking a refresh token ends its whole family;
// access tokens are stateless JWTs that expire within the hour, so revoking
// one is acknowledged and has no further effect.
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	form, c, ok := p.clientRequest(w, r)
	if !ok {
		return
	}
	tok := form.Get("token")
	if tok == "" {
		p.writeOAuthError(w, r, errInvalidRequest("token is required"))
		return
	}
	if fid, sec, ok := strings.Cut(tok, "."); ok && !strings.Contains(sec, ".") {
		if fam, err := p.store.GetRefreshFamily(r.Context(), fid); err == nil && fam.ClientID == c.ID && currentToken(fam.CurrentHash, sec) {
			p.revokeFamily(r.Context(), fid)
			p.log.Info("refresh token revoked", "client", c.ID, "sub", fam.Subject)
		}
	}
	noStore(w.Header())
	w.WriteHeader(http.StatusOK)
}

// introspect is the RFC 7662 introspection endpoint. It needs client
// authentication (RFC 7662 §2.1): a public client, which has no secret, is
// refused, and a client learns only about tokens issued to it. Anything
// else — not live, or another client's — is exactly {"active":false}.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	form, c, ok := p.clientRequest(w, r)
	if !ok {
		return
	}
	if c.Public {
		p.writeOAuthError(w, r, oauth.InvalidClient("introspection needs client authentication; public clients have no secret", false))
		return
	}
	inactive := map[string]bool{"active": false}
	tok := form.Get("token")
	if tok == "" {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	// A refresh token: "family.secret".
	if fid, sec, ok := strings.Cut(tok, "."); ok && !strings.Contains(sec, ".") {
		fam, err := p.store.GetRefreshFamily(r.Context(), fid)
		if err != nil || fam.Revoked || fam.ClientID != c.ID || !currentToken(fam.CurrentHash, sec) {
			writeJSON(w, http.StatusOK, inactive)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"active": true, "token_type": "refresh_token", "client_id": fam.ClientID, "sub": fam.Subject,
			"scope": strings.Join(fam.Scopes, " "), "exp": fam.Expires.Unix(), "iss": p.issuer,
		})
		return
	}
	at, err := p.verifier.Verify(tok, claims.KindAccess)
	if err != nil || at.ClientID != c.ID || p.sessions.Revoked(at) || !p.tokenSessionAlive(r, at) {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	out := map[string]any{
		"active": true, "token_type": "Bearer", "scope": at.Scope, "client_id": at.ClientID,
		"username": at.PreferredUsername, "sub": at.Subject, "aud": at.Audience, "iss": at.Issuer,
		"exp": at.Expiry.Time().Unix(), "iat": at.IssuedAt.Time().Unix(), "jti": at.ID,
	}
	if at.NotBefore != nil {
		out["nbf"] = at.NotBefore.Time().Unix()
	}
	writeJSON(w, http.StatusOK, out)
}

// currentToken reports, in constant time, whether the secret sec is the family's
// newest refresh token.
func currentToken(currentHash, sec string) bool {
	return secret.Matches(currentHash, sec)
}

// tokenSessionAlive reports whether the session of an access token still
// answers for it (a signed-out session does for tokens minted after the
// sign-out by an offline_access refresh).
func (p *Provider) tokenSessionAlive(r *http.Request, at *claims.Claims) bool {
	if at.SessionID == "" {
		return false
	}
	_, err := p.sessions.GetForToken(r.Context(), at)
	return err == nil
}

package broker

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/ghbroker/ghbroker/claims"
)

// revoke is the RFC 7009 revocation endpoint. It answers 200 for unknown
// and invalid tokens. Revoking a refresh token ends its whole family;
// access tokens are stateless JWTs that expire within the hour, so revoking
// one is acknowledged and has no further effect.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	form, c, ok := s.clientRequest(w, r)
	if !ok {
		return
	}
	tok := form.Get("token")
	if tok == "" {
		s.writeOAuthError(w, r, errInvalidRequest("token is required"))
		return
	}
	if fid, secret, ok := strings.Cut(tok, "."); ok && !strings.Contains(secret, ".") {
		if fam, err := s.opts.Store.GetRefreshFamily(r.Context(), fid); err == nil && fam.ClientID == c.ID && currentToken(fam.CurrentHash, secret) {
			s.revokeFamily(r.Context(), fid)
			s.opts.Logger.Info("refresh token revoked", "client", c.ID, "sub", fam.Subject)
		}
	}
	noStore(w.Header())
	w.WriteHeader(http.StatusOK)
}

// introspect is the RFC 7662 introspection endpoint for authenticated
// clients. Anything not live is exactly {"active":false}.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	form, c, ok := s.clientRequest(w, r)
	if !ok {
		return
	}
	inactive := map[string]bool{"active": false}
	tok := form.Get("token")
	if tok == "" {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	// A refresh token: "family.secret".
	if fid, secret, ok := strings.Cut(tok, "."); ok && !strings.Contains(secret, ".") {
		fam, err := s.opts.Store.GetRefreshFamily(r.Context(), fid)
		if err != nil || fam.Revoked || fam.ClientID != c.ID || !currentToken(fam.CurrentHash, secret) {
			writeJSON(w, http.StatusOK, inactive)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"active": true, "token_type": "refresh_token", "client_id": fam.ClientID, "sub": fam.Subject,
			"scope": strings.Join(fam.Scopes, " "), "exp": fam.Expires.Unix(), "iss": s.opts.Issuer,
		})
		return
	}
	at, err := s.opts.Verifier.Verify(tok, claims.KindAccess)
	if err != nil || !s.sessionAlive(r.Context(), at.SessionID) {
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

// currentToken reports, in constant time, whether secret is the family's
// newest refresh token.
func currentToken(currentHash, secret string) bool {
	return subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(currentHash)) == 1
}

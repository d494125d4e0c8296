package githubfake

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxFormBytes bounds every form body the emulator reads.
const maxFormBytes = 64 << 10

// oauthError is a token endpoint error. GitHub sends it with HTTP 200.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
	URI         string `json:"error_uri"`
}

func errIncorrectClient() oauthError {
	return oauthError{"incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.", docsTokenErrors + "#incorrect-client-credentials"}
}

func errBadCode() oauthError {
	return oauthError{"bad_verification_code", "The code passed is incorrect or expired.", docsTokenErrors + "#bad-verification-code"}
}

func errRedirectMismatch() oauthError {
	return oauthError{"redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.", docsAuthorizeErrors + "#redirect-uri-mismatch2"}
}

func errUnverifiedEmail() oauthError {
	return oauthError{"unverified_user_email", "The user must have a verified primary email.", docsTokenErrors + "#unverified_user_email"}
}

func errUnsupportedGrant() oauthError {
	return oauthError{"unsupported_grant_type", "The grant type is not supported.", docsTokenErrors}
}

// tokenRequest is a parsed POST /login/oauth/access_token.
type tokenRequest struct {
	clientID, clientSecret string
	code                   string
	redirectURI            string
	hasRedirect            bool
	verifier               string
	grantType              string
}

// parseTokenRequest reads the form (body and query, as GitHub accepts both)
// and client credentials from HTTP Basic or from the form.
func parseTokenRequest(w http.ResponseWriter, r *http.Request) (*tokenRequest, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	f := r.Form
	t := &tokenRequest{
		clientID:     f.Get("client_id"),
		clientSecret: f.Get("client_secret"),
		code:         f.Get("code"),
		redirectURI:  f.Get("redirect_uri"),
		hasRedirect:  f.Get("redirect_uri") != "",
		verifier:     f.Get("code_verifier"),
		grantType:    f.Get("grant_type"),
	}
	if id, secret, ok := r.BasicAuth(); ok {
		// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic.
		if v, err := url.QueryUnescape(id); err == nil {
			id = v
		}
		if v, err := url.QueryUnescape(secret); err == nil {
			secret = v
		}
		t.clientID, t.clientSecret = id, secret
	}
	return t, nil
}

// handleToken serves POST /login/oauth/access_token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if !s.delay(r) {
		return
	}
	if s.currentFaults().ServerError {
		writeOutage(w)
		return
	}
	req, err := parseTokenRequest(w, r)
	if err != nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(oauthError{"invalid_request", "The request body could not be parsed.", docsTokenErrors})
		return
	}
	tok, scopes, oerr := s.exchange(req)
	if oerr != nil {
		s.log.Debug("githubfake: token request refused", "error", oerr.Code, "client_id", req.clientID)
		writeTokenResponse(w, r, []string{"error", oerr.Code, "error_description", oerr.Description, "error_uri", oerr.URI})
		return
	}
	writeTokenResponse(w, r, []string{"access_token", tok, "scope", strings.Join(scopes, ","), "token_type", "bearer"})
}

// exchange redeems a code. The code is looked up and deleted under one lock
// once the client is authenticated: single use, whatever happens next.
func (s *Server) exchange(req *tokenRequest) (string, []string, *oauthError) {
	fail := func(e oauthError) (string, []string, *oauthError) { return "", nil, &e }
	if req.grantType != "" && req.grantType != "authorization_code" {
		return fail(errUnsupportedGrant())
	}
	app := s.world().apps[req.clientID]
	if app == nil || subtle.ConstantTimeCompare([]byte(app.ClientSecret), []byte(req.clientSecret)) != 1 {
		return fail(errIncorrectClient())
	}
	s.mu.Lock()
	g := s.codes[req.code]
	delete(s.codes, req.code)
	s.mu.Unlock()
	if g == nil || g.clientID != app.ClientID || !s.now().Before(g.expires) {
		return fail(errBadCode())
	}
	if req.hasRedirect && req.redirectURI != g.redirectURI {
		return fail(errRedirectMismatch())
	}
	if g.challenge != "" && !verifierMatches(req.verifier, g.challenge) {
		return fail(errBadCode())
	}
	if p := g.user.primaryEmail(); p != nil && !p.Verified {
		return fail(errUnverifiedEmail())
	}
	return s.newToken(app.ClientID, g.user, g.scopes), g.scopes, nil
}

// verifierMatches checks an RFC 7636 S256 code_verifier against challenge.
func verifierMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for _, r := range verifier {
		if !isAlnum(r) && !strings.ContainsRune("-._~", r) {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// writeTokenResponse writes ordered key/value pairs as JSON, XML or (the
// default) a form-encoded body, following Accept as GitHub does, always with
// HTTP 200. Headers are set before WriteHeader.
func writeTokenResponse(w http.ResponseWriter, r *http.Request, kv []string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	switch acceptKind(r.Header.Get("Accept")) {
	case "json":
		var b strings.Builder
		b.WriteByte('{')
		for i := 0; i+1 < len(kv); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(kv[i])
			v, _ := json.Marshal(kv[i+1])
			b.Write(k)
			b.WriteByte(':')
			b.Write(v)
		}
		b.WriteByte('}')
		h.Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(b.String()))
	case "xml":
		var b strings.Builder
		b.WriteString("<OAuth>")
		for i := 0; i+1 < len(kv); i += 2 {
			b.WriteString("<" + kv[i] + ">")
			_ = xml.EscapeText(&b, []byte(kv[i+1]))
			b.WriteString("</" + kv[i] + ">")
		}
		b.WriteString("</OAuth>")
		h.Set("Content-Type", "application/xml; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(b.String()))
	default:
		var q []string
		for i := 0; i+1 < len(kv); i += 2 {
			q = append(q, url.QueryEscape(kv[i])+"="+url.QueryEscape(kv[i+1]))
		}
		h.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(strings.Join(q, "&")))
	}
}

// acceptKind picks "json", "xml" or "form" from an Accept header.
func acceptKind(accept string) string {
	kind := "form"
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json":
			return "json"
		case "application/xml":
			kind = "xml"
		}
	}
	return kind
}

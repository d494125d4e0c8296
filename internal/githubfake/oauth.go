package githubfake

import (
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
)

// Documentation links GitHub puts in error_uri.
const (
	docsAuthorizeErrors = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/"
	docsTokenErrors     = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"
)

// authzRequest is a parsed, validated GET or POST /login/oauth/authorize.
type authzRequest struct {
	app      *App
	params   url.Values // the parameters as received, echoed by the sign-in form
	redirect string     // effective redirect_uri: the given one or the callback
	scopes   []string
	state    string
	login    string // suggested account
	method   string
	chall    string
}

// authzFailure says how a bad authorization request is answered.
type authzFailure struct {
	notFound   bool   // unknown client: 404 page
	redirect   string // else redirect here with error, error_description, error_uri
	code, desc string
	uri        string
	state      string
}

// parseAuthorize validates the authorization request parameters.
func (s *Server) parseAuthorize(p url.Values) (*authzRequest, *authzFailure) {
	app := s.world().apps[p.Get("client_id")]
	if app == nil {
		return nil, &authzFailure{notFound: true}
	}
	req := &authzRequest{
		app:    app,
		params: p,
		state:  p.Get("state"),
		login:  p.Get("login"),
		scopes: parseScopes(p.Get("scope")),
		method: p.Get("code_challenge_method"),
		chall:  p.Get("code_challenge"),
	}
	req.redirect = app.CallbackURL
	if p.Has("redirect_uri") && p.Get("redirect_uri") != "" {
		req.redirect = p.Get("redirect_uri")
		if !redirectAllowed(app.CallbackURL, req.redirect) {
			return nil, &authzFailure{
				redirect: app.CallbackURL,
				code:     "redirect_uri_mismatch",
				desc:     "The redirect_uri MUST match the registered callback URL for this application.",
				uri:      docsAuthorizeErrors + "#redirect-uri-mismatch",
				state:    req.state,
			}
		}
	}
	if req.chall != "" || req.method != "" {
		// GitHub accepts S256 only (changelog 2025-07-14); a challenge
		// without a method would be "plain" under RFC 7636 §4.3.
		desc := ""
		switch {
		case req.method != "S256":
			desc = "Only the S256 code_challenge_method is supported."
		case !validChallenge(req.chall):
			desc = "The code_challenge must be a base64url-encoded SHA-256 digest (43 characters)."
		}
		if desc != "" {
			return nil, &authzFailure{redirect: req.redirect, code: "invalid_request", desc: desc, uri: docsAuthorizeErrors, state: req.state}
		}
	}
	return req, nil
}

// handleAuthorize serves GET /login/oauth/authorize: the sign-in page, or an
// immediate redirect while auto-approval is on.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if !s.delay(r) {
		return
	}
	req, fail := s.parseAuthorize(r.URL.Query())
	if fail != nil {
		s.authorizeFailed(w, r, fail)
		return
	}
	s.mu.Lock()
	auto := s.autoApprove
	s.mu.Unlock()
	if auto != nil {
		if u := s.world().user(req.login); u != nil {
			auto = u
		}
		s.approve(w, r, req, auto)
		return
	}
	s.renderSignIn(w, r, req, http.StatusOK, "")
}

// handleAuthorizeSubmit serves the sign-in form's POST: a user button or
// Cancel.
func (s *Server) handleAuthorizeSubmit(w http.ResponseWriter, r *http.Request) {
	if !s.delay(r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderNotFound(w, http.StatusBadRequest)
		return
	}
	form := r.PostForm
	req, fail := s.parseAuthorize(form)
	if fail != nil {
		s.authorizeFailed(w, r, fail)
		return
	}
	if form.Has("cancel") {
		redirectWith(w, r, req.redirect, []string{
			"error", "access_denied",
			"error_description", "The user has denied your application access.",
			"error_uri", docsAuthorizeErrors + "#access-denied",
			"state", req.state,
		})
		return
	}
	u := s.world().user(form.Get("login"))
	if u == nil {
		s.renderSignIn(w, r, req, http.StatusUnprocessableEntity, "Choose one of the accounts below.")
		return
	}
	s.approve(w, r, req, u)
}

func (s *Server) authorizeFailed(w http.ResponseWriter, r *http.Request, f *authzFailure) {
	if f.notFound {
		s.renderNotFound(w, http.StatusNotFound)
		return
	}
	redirectWith(w, r, f.redirect, []string{
		"error", f.code, "error_description", f.desc, "error_uri", f.uri, "state", f.state,
	})
}

// approve issues a code for u and redirects to the client.
func (s *Server) approve(w http.ResponseWriter, r *http.Request, req *authzRequest, u *userRec) {
	code := randomHex(10)
	now := s.now()
	s.mu.Lock()
	for c, g := range s.codes { // sweep expired codes
		if !now.Before(g.expires) {
			delete(s.codes, c)
		}
	}
	s.codes[code] = &grant{
		clientID:    req.app.ClientID,
		user:        u,
		redirectURI: req.redirect,
		scopes:      req.scopes,
		challenge:   req.chall,
		expires:     now.Add(codeTTL),
	}
	s.mu.Unlock()
	redirectWith(w, r, req.redirect, []string{"code", code, "state", req.state})
}

// redirectWith answers 302 to base with the given key/value pairs appended
// to its query, in order, keeping any query base already has. Empty values
// are left out.
func redirectWith(w http.ResponseWriter, r *http.Request, base string, kv []string) {
	var q []string
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q = append(q, url.QueryEscape(kv[i])+"="+url.QueryEscape(kv[i+1]))
		}
	}
	target, _, _ := strings.Cut(base, "#") // validated URIs carry none; be safe
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
		if strings.HasSuffix(target, "?") || strings.HasSuffix(target, "&") {
			sep = ""
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target+sep+strings.Join(q, "&"), http.StatusFound)
}

// redirectAllowed applies GitHub's OAuth App redirect_uri rule against the
// registered callback: same scheme, same host or a sub-domain of it, same
// port (any port when both hosts are the loopback 127.0.0.1), and the
// callback path or a sub-path of it. The query is not compared; fragments,
// user info and dot segments are refused.
func redirectAllowed(callback, redirect string) bool {
	cb, err := url.Parse(callback)
	if err != nil {
		return false
	}
	ru, err := url.Parse(redirect)
	if err != nil || !ru.IsAbs() || ru.Fragment != "" || ru.User != nil || ru.Opaque != "" {
		return false
	}
	if !strings.EqualFold(cb.Scheme, ru.Scheme) {
		return false
	}
	cbHost, ruHost := strings.ToLower(cb.Hostname()), strings.ToLower(ru.Hostname())
	loopback := cbHost == "127.0.0.1" && ruHost == "127.0.0.1"
	switch {
	case cbHost == ruHost:
	case net.ParseIP(cbHost) == nil && strings.HasSuffix(ruHost, "."+cbHost):
	default:
		return false
	}
	if !loopback && portOf(cb) != portOf(ru) {
		return false
	}
	return subPath(cb.EscapedPath(), ru.EscapedPath())
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// subPath reports whether p is base or below it, segment-wise.
func subPath(base, p string) bool {
	if base == "" {
		base = "/"
	}
	if p == "" {
		p = "/"
	}
	if hasDotSegment(p) {
		return false
	}
	if p == base {
		return true
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return strings.HasPrefix(p, base)
}

// hasDotSegment reports paths that are not in canonical form: dot
// segments (plain or percent-encoded), encoded slashes, empty segments.
func hasDotSegment(p string) bool {
	lower := strings.ToLower(p)
	if strings.Contains(lower, "%2e") || strings.Contains(lower, "%2f") {
		return true
	}
	return p != "/" && path.Clean(p) != strings.TrimSuffix(p, "/")
}

// validChallenge checks an S256 code_challenge: base64url without padding
// of 32 bytes, i.e. 43 characters from the URL-safe alphabet.
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for _, r := range c {
		if !isAlnum(r) && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

// parseScopes splits a scope parameter on spaces (GitHub also accepts
// commas) and drops duplicates, keeping the order.
func parseScopes(s string) []string {
	return dedupe(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }))
}

func dedupe(in []string) []string {
	out := []string{}
	for _, v := range in {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// impliedScopes lists what a scope includes, per GitHub's scope docs.
func impliedScopes(scope string) []string {
	switch scope {
	case "user":
		return []string{"read:user", "user:email", "user:follow"}
	case "admin:org":
		return []string{"write:org", "read:org"}
	case "write:org":
		return []string{"read:org"}
	case "repo":
		return []string{"repo:status", "repo_deployment", "public_repo", "repo:invite", "security_events"}
	}
	return nil
}

// hasAnyScope reports whether granted includes, directly or by implication,
// any of want.
func hasAnyScope(granted []string, want ...string) bool {
	for _, g := range granted {
		if slices.Contains(want, g) {
			return true
		}
		for _, implied := range impliedScopes(g) {
			if slices.Contains(want, implied) {
				return true
			}
		}
	}
	return false
}

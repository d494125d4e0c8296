package oidc

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ghbroker/ghbroker/broker/internal/oauth"
	"github.com/ghbroker/ghbroker/broker/internal/secret"
	"github.com/ghbroker/ghbroker/claims"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/web"
)

// codeTTL is an authorization code's lifetime (RFC 6749 §4.1.2: short-lived, 10 minutes at most).
const codeTTL = 60 * time.Second

// usedCodeTTL keeps a used code's record long enough to detect a replay.
const usedCodeTTL = 10 * time.Minute

// authorizeRequest is a parsed OIDC authorization request (OIDC Core
// §3.1.2.1). Its fields are valid once parseAuthorize returns no error.
type authorizeRequest struct {
	store.AuthRequest
	client    *Client
	prompt    map[string]bool
	maxAge    int // -1: absent
	loginHint string
	hint      *claims.Claims // verified id_token_hint
}

// authorizeFailure is an error at /authorize: redirected to the client when
// the redirect URI is known to be valid, a page otherwise.
type authorizeFailure struct {
	code, desc string
	redirect   bool
}

// authorize is the OIDC authorization endpoint (GET and POST). A request
// that needs a sign-in goes to /login with this request as its return
// address: /login renews an SSO session silently or runs the GitHub round
// trip, and the browser comes back here with a session.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	req, fail := p.parseAuthorize(r)
	if fail != nil {
		p.authorizeError(w, r, req, fail)
		return
	}
	sess, hasSession, err := p.browserSession(r)
	if err != nil {
		p.pages.Internal(w, r, "reading your session", err)
		return
	}
	now := p.now()
	force := req.prompt["login"] ||
		(hasSession && req.maxAge >= 0 && now.Sub(sess.AuthTime) > time.Duration(req.maxAge)*time.Second) ||
		(hasSession && req.hint != nil && req.hint.Subject != sess.Subject)
	if !hasSession || force {
		if req.prompt["none"] {
			p.authorizeError(w, r, req, &authorizeFailure{code: "login_required", desc: "the user must sign in", redirect: true})
			return
		}
		// prompt=login (and an exceeded max_age, or a hint naming someone
		// else) is satisfied by a fresh GitHub round trip, whose callback
		// creates a new session (auth_time moves). The return address is the
		// validated request without those parameters, so it cannot loop.
		q := url.Values{"rd": {"/authorize?" + req.resumeQuery().Encode()}}
		if force {
			q.Set("prompt", "login")
		}
		if req.loginHint != "" {
			q.Set("login_hint", req.loginHint)
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, p.issuer+"/login?"+q.Encode(), http.StatusFound)
		return
	}
	p.issueCode(w, r, req.AuthRequest, sess)
}

// resumeQuery is the validated request as /authorize parameters, without
// prompt, max_age and the hints: what the browser comes back with after a
// sign-in.
func (req *authorizeRequest) resumeQuery() url.Values {
	q := url.Values{
		"response_type": {"code"}, "client_id": {req.ClientID}, "redirect_uri": {req.RedirectURI},
		"scope": {strings.Join(req.Scopes, " ")},
	}
	for k, v := range map[string]string{
		"state": req.State, "nonce": req.Nonce,
		"code_challenge": req.CodeChallenge, "code_challenge_method": req.CodeChallengeMethod,
	} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// browserSession returns the broker session of a request: its valid
// session token and the server-side session behind it. The error is set
// only when the store could not answer (the request cannot be decided).
func (p *Provider) browserSession(r *http.Request) (store.Session, bool, error) {
	c := p.sessions.Current(r)
	if c == nil || c.SessionID == "" {
		return store.Session{}, false, nil
	}
	sess, err := p.sessions.Get(r.Context(), c.SessionID)
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return store.Session{}, false, err
	case err != nil:
		return store.Session{}, false, nil
	}
	return sess, true, nil
}

// issueCode stores a single-use code for the request and sends the browser
// back to the client with it, the state and the issuer (RFC 9207).
func (p *Provider) issueCode(w http.ResponseWriter, r *http.Request, areq store.AuthRequest, sess store.Session) {
	code := secret.Random(32)
	err := p.store.CreateAuthCode(r.Context(), store.AuthCode{
		ID: secret.Hash(code), Request: areq, SessionID: sess.ID, Expires: p.now().Add(codeTTL),
	})
	if err != nil {
		p.pages.Internal(w, r, "issuing the authorization code", err)
		return
	}
	q := url.Values{"code": {code}, "iss": {p.issuer}}
	if areq.State != "" {
		q.Set("state", areq.State)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, withQuery(areq.RedirectURI, q), http.StatusFound)
}

// withQuery appends q to a registered redirect URI, keeping its own query.
func withQuery(base string, q url.Values) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + q.Encode()
}

// authorizeError answers a failed authorization request: back to the
// client when the redirect URI was validated (RFC 6749 §4.1.2.1), else an
// error page that never redirects.
func (p *Provider) authorizeError(w http.ResponseWriter, r *http.Request, req *authorizeRequest, f *authorizeFailure) {
	if !f.redirect || req == nil || req.RedirectURI == "" {
		p.pages.Problem(w, r, http.StatusBadRequest, web.Problem{
			Title:   "This sign-in link is not valid",
			Message: "The application that sent you here made a request ghbroker cannot accept: " + f.desc + ".",
		}, 0)
		return
	}
	q := url.Values{"error": {f.code}, "error_description": {f.desc}, "iss": {p.issuer}}
	if req.State != "" {
		q.Set("state", req.State)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, withQuery(req.RedirectURI, q), http.StatusFound)
}

// parseAuthorize validates the request. The client and redirect URI are
// checked first: until both are valid every failure is a page.
func (p *Provider) parseAuthorize(r *http.Request) (*authorizeRequest, *authorizeFailure) {
	page := func(desc string) *authorizeFailure { return &authorizeFailure{code: "invalid_request", desc: desc} }
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			return nil, page("the form could not be read")
		}
	}
	q := authorizeQuery(r)
	for k, v := range q {
		if len(v) > 1 {
			if k == "client_id" || k == "redirect_uri" {
				return nil, page(k + " appears more than once")
			}
		}
	}
	c, ok := p.client(q.Get("client_id"))
	if !ok {
		return nil, page("unknown client_id")
	}
	if !c.AllowsGrant(oauth.GrantAuthorizationCode) {
		return nil, page("this client may not use the authorization code flow")
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" && len(c.RedirectURIs) == 1 {
		redirect = c.RedirectURIs[0]
	}
	if !slices.Contains(c.RedirectURIs, redirect) {
		return nil, page("redirect_uri is not registered for this client")
	}
	req := &authorizeRequest{client: c, maxAge: -1, prompt: map[string]bool{}}
	req.ClientID, req.RedirectURI, req.State = c.ID, redirect, q.Get("state")
	fail := func(code, desc string) (*authorizeRequest, *authorizeFailure) {
		return req, &authorizeFailure{code: code, desc: desc, redirect: true}
	}
	for k, v := range q {
		if len(v) > 1 {
			return fail("invalid_request", k+" appears more than once")
		}
	}
	switch rt := q.Get("response_type"); {
	case rt == "":
		return fail("invalid_request", "response_type is required")
	case rt != "code":
		return fail("unsupported_response_type", "only response_type=code is supported")
	}
	if q.Has("request") {
		return fail("request_not_supported", "request objects are not supported")
	}
	if q.Has("request_uri") {
		return fail("request_uri_not_supported", "request_uri is not supported")
	}
	for _, sc := range strings.Fields(q.Get("scope")) {
		if !slices.Contains(supportedScopes, sc) {
			continue // unknown scopes are ignored (RFC 6749 §3.3)
		}
		if !c.AllowsScope(sc) {
			return fail("invalid_scope", "scope "+sc+" is not allowed for this client")
		}
		if !slices.Contains(req.Scopes, sc) {
			req.Scopes = append(req.Scopes, sc)
		}
	}
	if !slices.Contains(req.Scopes, "openid") {
		return fail("invalid_scope", "the openid scope is required")
	}
	req.Nonce = q.Get("nonce")
	if len(req.Nonce) > 512 || len(req.State) > 2048 {
		return fail("invalid_request", "state or nonce is too long")
	}
	if f := p.parsePKCE(req, q); f != nil {
		return req, f
	}
	for p := range strings.FieldsSeq(q.Get("prompt")) {
		switch p {
		case "none", "login", "consent", "select_account":
			req.prompt[p] = true
		default:
			return fail("invalid_request", "unknown prompt value")
		}
	}
	if req.prompt["none"] && len(req.prompt) > 1 {
		return fail("invalid_request", "prompt=none cannot be combined with other values")
	}
	if ma := q.Get("max_age"); ma != "" {
		n, err := strconv.Atoi(ma)
		if err != nil || n < 0 {
			return fail("invalid_request", "max_age must be a non-negative integer")
		}
		req.maxAge = n
	}
	req.loginHint = q.Get("login_hint")
	if h := q.Get("id_token_hint"); h != "" {
		hc, err := p.verifyIDTokenHint(h)
		if err != nil {
			return fail("invalid_request", "id_token_hint is not an ID token this issuer signed")
		}
		req.hint = hc
	}
	return req, nil
}

// parsePKCE accepts S256 only (RFC 7636; RFC 9700 §2.1.1). A challenge
// without a method means "plain" and is refused; public clients must send
// one.
func (p *Provider) parsePKCE(req *authorizeRequest, q url.Values) *authorizeFailure {
	ch, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case ch == "" && method != "":
		return &authorizeFailure{code: "invalid_request", desc: "code_challenge_method without code_challenge", redirect: true}
	case ch == "" && req.client.Public:
		return &authorizeFailure{code: "invalid_request", desc: "public clients must use PKCE (code_challenge with S256)", redirect: true}
	case ch == "":
		return nil
	case method != "S256":
		return &authorizeFailure{code: "invalid_request", desc: "only code_challenge_method=S256 is supported", redirect: true}
	case len(ch) != 43 || !base64URLChars(ch):
		return &authorizeFailure{code: "invalid_request", desc: "code_challenge must be a base64url SHA-256 digest", redirect: true}
	}
	req.CodeChallenge, req.CodeChallengeMethod = ch, method
	return nil
}

func base64URLChars(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

var errHint = errors.New("broker: id_token_hint")

// authorizeQuery returns the request's parameters (query or form).
func authorizeQuery(r *http.Request) url.Values {
	if r.Method == http.MethodPost {
		return r.PostForm
	}
	return r.URL.Query()
}

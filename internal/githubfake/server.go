package githubfake

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html/template"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a [Server]. The zero value is usable.
type Options struct {
	// Now is the clock for code expiry and rate-limit windows; nil means
	// time.Now.
	Now func() time.Time
	// RateLimit is the per-token number of REST requests per hour; zero or
	// negative means 5000, GitHub's limit for OAuth App user tokens.
	RateLimit int
	// Logger receives one debug record per request; nil discards.
	Logger *slog.Logger
}

// Server is the GitHub emulator. It is an [http.Handler] serving the web
// flow, the REST API at the root and under /api/v3, a sign-in page and an
// index page at /. All its methods are safe for concurrent use.
type Server struct {
	w         atomic.Pointer[world]
	mux       *http.ServeMux
	now       func() time.Time
	rateLimit int
	log       *slog.Logger
	pages     *template.Template

	mu          sync.Mutex
	codes       map[string]*grant
	tokens      map[string]*tokenRec
	restricted  map[string]bool // lowercased org login
	ssoEnforced map[string]bool // lowercased org login
	// ssoAuthorized holds, per token, the lowercased orgs it is SAML SSO
	// authorized for.
	ssoAuthorized map[string]map[string]bool
	autoApprove   *userRec
	faults        Faults
	calls         map[string]int
}

// grant is an issued, not yet redeemed authorization code.
type grant struct {
	clientID    string
	user        *userRec
	redirectURI string // the effective redirect_uri used at authorize
	scopes      []string
	challenge   string // S256 code_challenge, or ""
	expires     time.Time
}

// tokenRec is an issued access token and its rate-limit window.
type tokenRec struct {
	value     string
	clientID  string
	user      *userRec
	scopes    []string
	rateUsed  int
	rateReset time.Time
}

// codeTTL is GitHub's authorization code lifetime.
const codeTTL = 10 * time.Minute

// New returns a Server serving a copy of f; nil f means [DefaultFixture].
// New panics if f does not pass [Fixture.Validate]: a broken fixture is a
// programming error in the test or the embedded data.
func New(f *Fixture, opts Options) *Server {
	if f == nil {
		f = DefaultFixture()
	}
	if err := f.Validate(); err != nil {
		panic(err)
	}
	f = f.clone()
	s := &Server{
		mux:        http.NewServeMux(),
		now:        opts.Now,
		rateLimit:  opts.RateLimit,
		log:        opts.Logger,
		pages:      parsePages(),
		codes:      map[string]*grant{},
		tokens:     map[string]*tokenRec{},
		restricted: map[string]bool{},
		calls:      map[string]int{},

		ssoEnforced:   map[string]bool{},
		ssoAuthorized: map[string]map[string]bool{},
	}
	s.w.Store(newWorld(f))
	if s.now == nil {
		s.now = time.Now
	}
	if s.rateLimit <= 0 {
		s.rateLimit = 5000
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, o := range f.Orgs {
		if o.OAuthAppRestricted {
			s.restricted[strings.ToLower(o.Login)] = true
		}
		if o.SAMLSSOEnforced {
			s.ssoEnforced[strings.ToLower(o.Login)] = true
		}
	}
	s.routes()
	return s
}

func (s *Server) world() *world { return s.w.Load() }

// SetFixture replaces the emulated users, orgs and teams, as if GitHub's
// data changed: tokens already issued keep working for users who still
// exist and see their new memberships (a user removed from an org loses
// it at the next API call). It panics on an invalid fixture, like New.
func (s *Server) SetFixture(f *Fixture) {
	if err := f.Validate(); err != nil {
		panic("githubfake: SetFixture: " + err.Error())
	}
	s.w.Store(newWorld(f.clone()))
}

// routes registers every pattern; REST routes twice (root and /api/v3).
func (s *Server) routes() {
	web := func(pattern string, h http.HandlerFunc) {
		s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			s.count(pattern)
			h(w, r)
		})
	}
	web("GET /login/oauth/authorize", s.handleAuthorize)
	web("POST /login/oauth/authorize", s.handleAuthorizeSubmit)
	web("POST /login/oauth/access_token", s.handleToken)
	s.mux.HandleFunc("GET /avatars/u/{id}", s.handleAvatar)
	s.mux.HandleFunc("GET /{$}", s.handleIndex)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, "Not Found", docsREST)
	})
	for _, rt := range s.apiRoutes() {
		h := s.api(rt)
		s.mux.Handle("GET "+rt.path, h)
		s.mux.Handle("GET /api/v3"+rt.path, h)
	}
}

// ServeHTTP implements [http.Handler].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.log.Debug("githubfake: request", "method", r.Method, "path", r.URL.Path)
	s.mux.ServeHTTP(w, r)
}

func (s *Server) count(route string) {
	s.mu.Lock()
	s.calls[route]++
	s.mu.Unlock()
}

// Calls returns how many requests each route received since New or the last
// [Server.ResetCalls], keyed by method and pattern without the /api/v3
// prefix, e.g. "GET /user/teams", "POST /login/oauth/access_token",
// "GET /orgs/{org}/members/{username}". Every request counts, including
// failed, faulted and 304 ones.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// ResetCalls sets every call count back to zero.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

// SetAutoApprove makes GET /login/oauth/authorize skip the sign-in page and
// redirect at once as login (or as the user named by the request's login
// parameter, if that is a fixture user). The request is still validated
// first (client, redirect_uri, PKCE) and errors are answered as usual.
// prompt=select_account does not override it. "" turns auto-approval off.
// It panics if login is not a fixture user.
func (s *Server) SetAutoApprove(login string) {
	var u *userRec
	if login != "" {
		if u = s.world().user(login); u == nil {
			panic(fmt.Sprintf("githubfake: SetAutoApprove: unknown user %q", login))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.autoApprove = u
}

// SetOrgRestricted turns the OAuth App access restriction of org on or off
// (see [Org.OAuthAppRestricted]). Unknown orgs are ignored.
func (s *Server) SetOrgRestricted(org string, restricted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restricted[strings.ToLower(org)] = restricted
}

// SetOrgSAMLSSO turns SAML SSO enforcement of org on or off (see
// [Org.SAMLSSOEnforced]). Unknown orgs are ignored.
func (s *Server) SetOrgSAMLSSO(org string, enforced bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ssoEnforced[strings.ToLower(org)] = enforced
}

// AuthorizeSSO authorizes token for org's SAML SSO, as a person does by
// following the X-GitHub-SSO URL and signing in with the org's identity
// provider.
func (s *Server) AuthorizeSSO(token, org string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ssoAuthorized[token] == nil {
		s.ssoAuthorized[token] = map[string]bool{}
	}
	s.ssoAuthorized[token][strings.ToLower(org)] = true
}

// needsSSO reports whether the call's token is refused o's data because
// o enforces SAML SSO, the user belongs to it and the token is not
// authorized.
func (s *Server) needsSSO(c *apiCall, o *orgRec) bool {
	if !o.isMember(c.user) && !o.pending[lower(c.user.Login)] {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	org := strings.ToLower(o.Login)
	return s.ssoEnforced[org] && !s.ssoAuthorized[c.token][org]
}

func (s *Server) isRestricted(o *orgRec) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restricted[strings.ToLower(o.Login)]
}

// RevokeToken makes token invalid: the REST API answers 401 Bad credentials.
// It reports whether the token existed.
func (s *Server) RevokeToken(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.tokens[token]
	delete(s.tokens, token)
	return ok
}

// RevokeUser revokes every token and unredeemed code of login (as when the
// user revokes the app) and returns how many tokens it revoked.
func (s *Server) RevokeUser(login string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for v, t := range s.tokens {
		if strings.EqualFold(t.user.Login, login) {
			delete(s.tokens, v)
			n++
		}
	}
	for c, g := range s.codes {
		if strings.EqualFold(g.user.Login, login) {
			delete(s.codes, c)
		}
	}
	return n
}

// IssueToken mints an access token for login with the given scopes, as if
// the user had completed the web flow with the fixture's first app, so REST
// tests can skip the flow.
func (s *Server) IssueToken(login string, scopes ...string) (string, error) {
	u := s.world().user(login)
	if u == nil {
		return "", fmt.Errorf("githubfake: IssueToken: unknown user %q", login)
	}
	return s.newToken(s.world().firstApp, u, dedupe(scopes)), nil
}

func (s *Server) newToken(clientID string, u *userRec, scopes []string) string {
	v := "gho_" + randomAlnum(36)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[v] = &tokenRec{value: v, clientID: clientID, user: u, scopes: scopes}
	return v
}

// randomHex returns 2n hex digits from crypto/rand.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (Go ≥1.24 crashes instead)
	return hex.EncodeToString(b)
}

// randomAlnum returns n characters from [0-9A-Za-z], uniformly, from
// crypto/rand.
func randomAlnum(n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		_, _ = rand.Read(buf)
		for _, b := range buf {
			if b < 248 && len(out) < n { // 248 = 4*62: reject to stay uniform
				out = append(out, alphabet[b%62])
			}
		}
	}
	return string(out)
}

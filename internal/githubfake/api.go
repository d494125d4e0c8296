package githubfake

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	jsonContentType = "application/json; charset=utf-8"
	docsREST        = "https://docs.github.com/rest"
	docsVersions    = "https://docs.github.com/rest/about-the-rest-api/api-versions"
	docsRateLimits  = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
	docsSecondary   = docsRateLimits + "#about-secondary-rate-limits"
	defaultVersion  = "2022-11-28"
)

// supportedVersions are the X-GitHub-Api-Version values GitHub accepts,
// newest first, as its 400 message lists them.
func supportedVersions() []string { return []string{"2026-03-10", "2022-11-28"} }

// apiRoute is one REST endpoint.
type apiRoute struct {
	path     string // pattern without method or /api/v3, e.g. /user/teams
	accepted string // X-Accepted-OAuth-Scopes
	h        func(*apiCall) apiResult
}

// apiCall is one authenticated REST request, parsed once.
type apiCall struct {
	r       *http.Request
	apiBase string // scheme://host or scheme://host/api/v3
	webBase string // scheme://host
	user    *userRec
	scopes  []string
	token   string
}

// apiResult is what a REST handler answers; the pipeline writes it.
type apiResult struct {
	status   int
	body     any    // JSON-encoded when non-nil
	link     string // Link header
	location string // Location header (302)
	sso      string // X-GitHub-SSO header
}

// apiError is GitHub's REST error body.
type apiError struct {
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
	Status           string `json:"status"`
}

func errResult(status int, msg, doc string) apiResult {
	return apiResult{status: status, body: apiError{msg, doc, strconv.Itoa(status)}}
}

// writeAPIError writes a REST error outside the pipeline.
func writeAPIError(w http.ResponseWriter, status int, msg, doc string) {
	b, _ := json.Marshal(apiError{msg, doc, strconv.Itoa(status)})
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// api wraps a REST route in the pipeline: call counting, latency, outage,
// API version, authentication, rate limits, body faults, ETag and writing.
func (s *Server) api(rt apiRoute) http.Handler {
	name := "GET " + rt.path
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count(name)
		if !s.delay(r) {
			return
		}
		f := s.currentFaults()
		if f.ServerError {
			writeOutage(w)
			return
		}
		h := w.Header()
		h.Set("Content-Type", jsonContentType)
		h.Set("X-GitHub-Media-Type", "github.v3; format=json")
		h.Set("X-GitHub-Request-Id", requestID())
		ver := r.Header.Get("X-GitHub-Api-Version")
		if ver == "" {
			ver = defaultVersion
		}
		if !slices.Contains(supportedVersions(), ver) {
			writeAPIError(w, http.StatusBadRequest, versionMessage(ver), docsVersions)
			return
		}
		h.Set("X-GitHub-Api-Version-Selected", ver)

		tok, authMsg := s.authenticate(r)
		if tok == nil {
			s.setRateHeaders(h, 60, 0, s.now().Add(time.Hour))
			writeAPIError(w, http.StatusUnauthorized, authMsg, docsREST)
			return
		}
		h.Set("X-OAuth-Scopes", strings.Join(tok.scopes, ", "))
		h.Set("X-Accepted-OAuth-Scopes", rt.accepted)

		used, reset, ok := s.rateCheck(tok.value)
		if s.rateRefused(w, f, tok, used, reset, ok) {
			return
		}
		if f.HugeBody {
			used, reset = s.rateCount(tok.value)
			s.setRateHeaders(h, s.rateLimit, used, reset)
			writeHugeBody(w)
			return
		}
		call := newAPICall(r, tok, s.world())
		if call == nil {
			writeAPIError(w, http.StatusUnauthorized, "Bad credentials", docsREST)
			return
		}
		s.writeResult(w, r, f, tok, rt.h(call), used, reset)
	})
}

// rateRefused answers the injected or real rate-limit refusals and reports
// whether it did.
func (s *Server) rateRefused(w http.ResponseWriter, f Faults, tok *tokenRec, used int, reset time.Time, ok bool) bool {
	h := w.Header()
	switch {
	case f.SecondaryRateLimit:
		s.setRateHeaders(h, s.rateLimit, used, reset)
		h.Set("Retry-After", "60")
		writeAPIError(w, http.StatusTooManyRequests, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID "+h.Get("X-GitHub-Request-Id")+".", docsSecondary)
		return true
	case f.RateLimited || !ok:
		s.setRateHeaders(h, s.rateLimit, s.rateLimit, reset)
		writeAPIError(w, http.StatusForbidden, fmt.Sprintf("API rate limit exceeded for user ID %d. If you reach out to GitHub Support for help, please include the request ID %s and timestamp %s UTC.", tok.user.ID, h.Get("X-GitHub-Request-Id"), s.now().UTC().Format("2006-01-02 15:04:05")), docsRateLimits)
		return true
	}
	return false
}

// writeResult encodes a handler's result: ETag and 304 (not counted) for
// 200s, rate-limit headers, Link and Location, the BadJSON fault.
func (s *Server) writeResult(w http.ResponseWriter, r *http.Request, f Faults, tok *tokenRec, res apiResult, used int, reset time.Time) {
	h := w.Header()
	var body []byte
	if res.body != nil {
		body, _ = json.Marshal(res.body)
	}
	if res.status == http.StatusOK && !f.BadJSON {
		etag := `W/"` + etagOf(body) + `"`
		h.Set("ETag", etag)
		h.Set("Cache-Control", "private, max-age=60, s-maxage=60")
		h.Set("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
		if etagMatches(r.Header.Get("If-None-Match"), etag) {
			s.setRateHeaders(h, s.rateLimit, used, reset)
			h.Del("Content-Type")
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	used, reset = s.rateCount(tok.value)
	s.setRateHeaders(h, s.rateLimit, used, reset)
	if res.link != "" {
		h.Set("Link", res.link)
	}
	if res.location != "" {
		h.Set("Location", res.location)
	}
	if res.sso != "" {
		h.Set("X-GitHub-SSO", res.sso)
	}
	if f.BadJSON && len(body) > 0 {
		body = truncateJSON(body)
	}
	if len(body) > 0 {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(res.status)
	_, _ = w.Write(body)
}

func newAPICall(r *http.Request, tok *tokenRec, wd *world) *apiCall {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	web := scheme + "://" + r.Host
	base := web
	if strings.HasPrefix(r.URL.Path, "/api/v3/") {
		base += "/api/v3"
	}
	// The fixture may have been replaced (SetFixture): act as the user
	// the token was issued to is now.
	u := wd.user(tok.user.Login)
	if u == nil {
		return nil
	}
	return &apiCall{r: r, apiBase: base, webBase: web, user: u, scopes: tok.scopes, token: tok.value}
}

func versionMessage(ver string) string {
	var quoted []string
	for i, v := range supportedVersions() {
		q := strconv.Quote(v)
		if i == 0 {
			q += " (most recent)"
		}
		quoted = append(quoted, q)
	}
	return fmt.Sprintf("The version you specified in the \"X-GitHub-Api-Version\" request header, %q, is not a supported version. The following versions are currently supported: %s.", ver, strings.Join(quoted, ", "))
}

// authenticate returns a snapshot of the token named by the Authorization
// header ("Bearer X" or "token X"), or nil and GitHub's 401 message.
func (s *Server) authenticate(r *http.Request) (*tokenRec, string) {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return nil, "Requires authentication"
	}
	scheme, value, ok := strings.Cut(strings.TrimSpace(authz), " ")
	value = strings.TrimSpace(value)
	if !ok || value == "" || !(strings.EqualFold(scheme, "bearer") || strings.EqualFold(scheme, "token")) {
		return nil, "Bad credentials"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[value]
	if t == nil {
		return nil, "Bad credentials"
	}
	snap := *t
	return &snap, ""
}

// rateCheck reports the token's usage in its current window and whether a
// request may proceed, starting a new window if the last one ended.
func (s *Server) rateCheck(token string) (used int, reset time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.rateWindow(token)
	if t == nil {
		return 0, s.now().Add(time.Hour), true
	}
	return t.rateUsed, t.rateReset, t.rateUsed < s.rateLimit
}

// rateCount counts one request against the token's window.
func (s *Server) rateCount(token string) (used int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.rateWindow(token)
	if t == nil { // revoked meanwhile
		return 1, s.now().Add(time.Hour)
	}
	t.rateUsed++
	return t.rateUsed, t.rateReset
}

// rateWindow returns the live token with a current window; s.mu is held.
func (s *Server) rateWindow(token string) *tokenRec {
	t := s.tokens[token]
	if t == nil {
		return nil
	}
	if now := s.now(); t.rateReset.IsZero() || !now.Before(t.rateReset) {
		t.rateUsed, t.rateReset = 0, now.Add(time.Hour).Truncate(time.Second)
	}
	return t
}

func (s *Server) setRateHeaders(h http.Header, limit, used int, reset time.Time) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, limit-used)))
	h.Set("X-RateLimit-Used", strconv.Itoa(min(used, limit)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:16])
}

// etagMatches implements the weak comparison of If-None-Match (RFC 9110
// §13.1.2).
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == want {
			return true
		}
	}
	return false
}

// requestID returns a GitHub-looking X-GitHub-Request-Id.
func requestID() string {
	h := strings.ToUpper(randomHex(14))
	return h[0:4] + ":" + h[4:8] + ":" + h[8:14] + ":" + h[14:20] + ":" + h[20:28]
}

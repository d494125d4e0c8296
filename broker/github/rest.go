package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// response is a successful (2xx) REST response, read in full.
type response struct {
	status int
	header http.Header
	body   []byte
	// url is the URL that answered (after redirects), against which a
	// relative Link target is resolved.
	url *url.URL
}

// get sends an authenticated GET for rawURL, an absolute URL under the API
// base, reads the body within the size bound and turns every failure into
// a typed error.
func (c *Client) get(ctx context.Context, token, rawURL string) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("github: build request: %w", err)
	}
	path := req.URL.Path
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	req.Header.Set("User-Agent", c.userAgent)
	key := etagKeyOf(token, rawURL)
	cached := c.etags.get(key)
	if cached != nil {
		req.Header.Set("If-None-Match", cached.etag)
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && cached != nil {
		c.log.DebugContext(ctx, "github request", "path", path, "status", resp.StatusCode, "cached", true)
		return &response{status: http.StatusOK, header: cached.header, body: cached.body, url: cached.url}, nil
	}

	// Read one byte past the bound to tell "exactly the limit" from
	// "more"; never buffer the rest of an oversized body.
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	tooLarge := int64(len(body)) > c.maxBody
	if tooLarge {
		body = nil // a partial document is never parsed
	}
	if readErr != nil {
		if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
			return nil, c.transportError(ctx, path, readErr)
		}
		body = nil // the status alone classifies a failed response
	}
	if err := c.statusError(resp, path, body); err != nil {
		return nil, err
	}
	if tooLarge {
		return nil, &APIError{
			Status:  resp.StatusCode,
			Message: fmt.Sprintf("response body exceeds %d bytes", c.maxBody),
			Path:    path,
			Err:     ErrBodyTooLarge,
		}
	}
	c.log.DebugContext(ctx, "github request", "path", path, "status", resp.StatusCode,
		"ratelimit_remaining", resp.Header.Get("X-Ratelimit-Remaining"))
	if resp.StatusCode == http.StatusOK {
		c.etags.put(key, &etagEntry{etag: resp.Header.Get("ETag"), header: resp.Header.Clone(), body: body, url: resp.Request.URL})
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body, url: resp.Request.URL}, nil
}

// getJSON GETs rawURL and decodes the JSON body into v.
func (c *Client) getJSON(ctx context.Context, token, rawURL string, v any) error {
	resp, err := c.get(ctx, token, rawURL)
	if err != nil {
		return err
	}
	return resp.decode(v)
}

// decode unmarshals the body into v; anything that is not one complete JSON
// document of the right shape is an ErrMalformedResponse.
func (r *response) decode(v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return malformed(r.status, r.url.Path, "response is not the expected JSON: "+err.Error())
	}
	return nil
}

// malformed builds the error for a success response the client cannot use.
func malformed(status int, path, msg string) error {
	return &APIError{Status: status, Message: msg, Path: path, Err: ErrMalformedResponse}
}

// transportError classifies a failure to get or read a response. A context
// the caller canceled stays a plain (wrapped) error; everything else —
// timeouts, refused or reset connections, truncated bodies — means GitHub is
// unavailable.
func (c *Client) transportError(ctx context.Context, path string, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("github: %s: %w", path, err)
	}
	return &UnavailableError{Path: path, Err: err}
}

// errorBody is the JSON body GitHub sends with a REST error.
type errorBody struct {
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
}

// statusError returns nil for a 2xx response and the typed error for any
// other status. body may be nil (too large or unreadable); it is parsed only
// for GitHub's message and documentation_url.
func (c *Client) statusError(resp *http.Response, path string, body []byte) error {
	st := resp.StatusCode
	if st >= 200 && st <= 299 {
		return nil
	}
	var eb errorBody
	_ = json.Unmarshal(body, &eb) // best effort: error bodies may be HTML or empty
	msg := truncate(eb.Message)
	if msg == "" {
		msg = http.StatusText(st)
	}
	h := resp.Header
	switch {
	case st >= 500:
		wait, _ := parseRetryAfter(h.Get("Retry-After"), c.now())
		return &UnavailableError{Status: st, RetryAfter: wait, Path: path}
	case st == http.StatusTooManyRequests,
		st == http.StatusForbidden && (h.Get("X-Ratelimit-Remaining") == "0" ||
			h.Get("Retry-After") != "" || isSecondaryRateLimit(eb.DocumentationURL)):
		return c.rateLimitError(st, h, msg, path)
	}
	e := &APIError{Status: st, Message: msg, DocumentationURL: eb.DocumentationURL, Path: path}
	switch st {
	case http.StatusUnauthorized:
		e.Err = ErrBadCredentials
	case http.StatusNotFound:
		e.Err = ErrNotFound
	case http.StatusForbidden:
		if sso := parseSSOHeader(h.Values("X-GitHub-SSO")); sso.required {
			e.Err, e.ssoURL = ErrSSORequired, sso.url
		}
	}
	return e
}

// rateLimitError reads GitHub's rate-limit headers
// (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit):
// wait retry-after seconds when sent, else until x-ratelimit-reset, and at
// least a minute when GitHub gives no retry-after.
func (c *Client) rateLimitError(status int, h http.Header, msg, path string) *RateLimitError {
	now := c.now()
	e := &RateLimitError{Status: status, Message: msg, Path: path}
	if s := h.Get("X-Ratelimit-Reset"); s != "" {
		if sec, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && sec > 0 {
			e.Reset = time.Unix(sec, 0)
		}
	}
	if d, ok := parseRetryAfter(h.Get("Retry-After"), now); ok {
		e.RetryAfter = d
		return e
	}
	if !e.Reset.IsZero() {
		e.RetryAfter = e.Reset.Sub(now).Round(time.Second)
	}
	e.RetryAfter = max(e.RetryAfter, MinRateLimitWait)
	return e
}

// parseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3): delay
// seconds, or an HTTP date. ok is false when the header is absent or
// unparsable; a date in the past is a wait of 0.
func parseRetryAfter(v string, now time.Time) (wait time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
		if sec < 0 {
			return 0, false
		}
		// Bound absurd values so the multiplication cannot overflow.
		return time.Duration(min(sec, maxRetryAfterSeconds)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now).Round(time.Second), 0), true
	}
	return 0, false
}

// maxRetryAfterSeconds caps a Retry-After at a day.
const maxRetryAfterSeconds = 24 * 60 * 60

// truncate bounds a message copied from a response into an error and keeps
// it valid UTF-8.
func truncate(s string) string {
	if len(s) <= maxMessageLen {
		return s
	}
	s = s[:maxMessageLen]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

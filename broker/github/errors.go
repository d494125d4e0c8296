package github

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors, matched with errors.Is. REST failures carry them inside an
// [*APIError], so errors.As still yields the status and path.
var (
	// ErrBadCredentials means GitHub answered 401: the token is revoked,
	// expired or invalid. The user must sign in again.
	ErrBadCredentials = errors.New("github: bad credentials")
	// ErrNotFound means GitHub answered 404 (also its answer for a missing
	// scope or an invisible resource).
	ErrNotFound = errors.New("github: not found")
	// ErrBodyTooLarge means a response body exceeded Config.MaxBodyBytes.
	ErrBodyTooLarge = errors.New("github: response body too large")
	// ErrMalformedResponse means a success response was not the JSON
	// expected (HTML from a proxy, a truncated document, a wrong shape).
	ErrMalformedResponse = errors.New("github: malformed response")
	// ErrUnsafeNextLink means a Link rel="next" URL left the API base's
	// scheme and host; the token is never sent there.
	ErrUnsafeNextLink = errors.New("github: pagination link leaves the API host")
	// ErrTooManyPages means a list had more pages than Config.MaxPages, or
	// its Link header looped.
	ErrTooManyPages = errors.New("github: too many pages")
	// ErrSSORequired means GitHub answered 403 with "X-GitHub-SSO:
	// required": the organization enforces SAML single sign-on and the
	// token is not authorized for it (see [SSOOrg]).
	ErrSSORequired = errors.New("github: organization requires SAML SSO authorization")
)

// maxMessageLen bounds the GitHub message copied into an error.
const maxMessageLen = 512

// APIError is a REST or token-endpoint response that GitHub answered but the
// client could not use: a 4xx other than a rate limit, or a body that was too
// large or not the expected JSON.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Message is GitHub's "message" field, or a description of what was
	// wrong with the response.
	Message string
	// DocumentationURL is GitHub's "documentation_url" field, if any.
	DocumentationURL string
	// Path is the request path (no host, no query), e.g. /api/v3/user.
	Path string
	// Err is the sentinel this error matches (ErrBadCredentials,
	// ErrNotFound, ErrSSORequired, ErrBodyTooLarge, ErrMalformedResponse,
	// ErrUnsafeNextLink, ErrTooManyPages), or nil.
	Err error

	// ssoURL is the unchecked url of an ErrSSORequired answer's
	// X-GitHub-SSO header, or "".
	ssoURL string
}

// Error describes the failed request.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("github: ")
	b.WriteString(e.Path)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap returns the sentinel the error matches, if any.
func (e *APIError) Unwrap() error { return e.Err }

// RateLimitError is a 403 or 429 that GitHub sends when a primary or
// secondary rate limit is exceeded
// (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api).
type RateLimitError struct {
	// Status is 403 or 429.
	Status int
	// Reset is x-ratelimit-reset, when the primary window resets; zero
	// when GitHub did not send it.
	Reset time.Time
	// RetryAfter is how long to wait: retry-after when sent, else Reset
	// minus now, and never less than MinRateLimitWait in that case.
	RetryAfter time.Duration
	// Message is GitHub's "message" field.
	Message string
	// Path is the request path.
	Path string
}

// MinRateLimitWait is the shortest wait a RateLimitError without a
// retry-after header asks for; GitHub says to wait at least a minute.
const MinRateLimitWait = time.Minute

// Error describes the limit and the wait.
func (e *RateLimitError) Error() string {
	s := fmt.Sprintf("github: %s: rate limited (status %d), retry after %s", e.Path, e.Status, e.RetryAfter)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// UnavailableError means GitHub could not be reached or did not answer
// usefully: a 5xx (including a proxy's HTML 502), a timeout, a refused or
// reset connection.
type UnavailableError struct {
	// Status is the HTTP status code, or 0 when no response arrived.
	Status int
	// RetryAfter is the Retry-After GitHub sent with a 5xx, or 0.
	RetryAfter time.Duration
	// Path is the request path.
	Path string
	// Err is the transport error, or nil for a 5xx.
	Err error
}

// Error describes the failure.
func (e *UnavailableError) Error() string {
	s := "github: " + e.Path + ": unavailable"
	if e.Status != 0 {
		s += fmt.Sprintf(" (status %d)", e.Status)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the transport error, so errors.Is(err,
// context.DeadlineExceeded) works.
func (e *UnavailableError) Unwrap() error { return e.Err }

// DefaultUnavailableWait is what [RetryAfter] suggests for an outage that
// came without a Retry-After header.
const DefaultUnavailableWait = 30 * time.Second

// IsTemporary reports whether err is a rate limit or an outage: the same
// request may succeed later, and the user should be told to retry rather
// than to sign in again.
func IsTemporary(err error) bool {
	var rl *RateLimitError
	var un *UnavailableError
	return errors.As(err, &rl) || errors.As(err, &un)
}

// RetryAfter returns how long a caller should wait before retrying err, for
// the Retry-After header of a 503 page: a rate limit's RetryAfter, an
// outage's Retry-After or DefaultUnavailableWait, and 0 for errors that
// retrying will not fix.
func RetryAfter(err error) time.Duration {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl.RetryAfter
	}
	var un *UnavailableError
	if errors.As(err, &un) {
		if un.RetryAfter > 0 {
			return un.RetryAfter
		}
		return DefaultUnavailableWait
	}
	return 0
}

// isOAuthAppRestricted reports whether a 403 is GitHub refusing this OAuth
// App because the organization enabled OAuth App access restrictions and has
// not approved it. GitHub signals this only in the error body: the message
// "Although you appear to have the correct authorization credentials, the
// `ORG` organization has enabled OAuth App access restrictions, meaning that
// data access to third-parties is limited. …" with documentation_url
// https://docs.github.com/articles/restricting-access-to-your-organization-s-data/
// (docs: organizations/managing-oauth-access-to-your-organizations-data/
// about-oauth-app-access-restrictions). Matching GitHub's
// documented text is the protocol here; this is the one place that does it.
func isOAuthAppRestricted(status int, message, documentationURL string) bool {
	return status == 403 &&
		(strings.Contains(documentationURL, "restricting-access-to-your-organization-s-data") ||
			strings.Contains(message, "OAuth App access restrictions"))
}

// isSecondaryRateLimit reports whether a 403 without rate-limit headers is a
// secondary rate limit. GitHub may omit retry-after for those and points
// documentation_url at the "secondary rate limits" section
// (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits).
// Like isOAuthAppRestricted, this reads GitHub's documented body because the
// protocol offers nothing else.
func isSecondaryRateLimit(documentationURL string) bool {
	return strings.Contains(documentationURL, "secondary-rate-limits")
}

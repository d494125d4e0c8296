package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	"golang.org/x/oauth2"
)

// Paths of GitHub's OAuth web flow under Config.WebURL.
const (
	authorizePath = "/login/oauth/authorize"
	tokenPath     = "/login/oauth/access_token"
)

// Error codes GitHub's token endpoint returns, with HTTP 200, in the "error"
// field (https://docs.github.com/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors).
const (
	// CodeBadVerificationCode: the code is wrong, expired (10 minutes) or
	// already used, or the PKCE verifier does not match.
	CodeBadVerificationCode = "bad_verification_code"
	// CodeIncorrectClientCredentials: client_id or client_secret is wrong.
	CodeIncorrectClientCredentials = "incorrect_client_credentials"
	// CodeRedirectURIMismatch: redirect_uri does not match the OAuth
	// App's callback URL.
	CodeRedirectURIMismatch = "redirect_uri_mismatch"
	// CodeUnverifiedUserEmail: the user has not verified their primary
	// email address.
	CodeUnverifiedUserEmail = "unverified_user_email"
)

// Sentinels for the token endpoint's error codes: errors.Is(err,
// ErrBadVerificationCode) matches any *OAuthError with that Code.
var (
	// ErrBadVerificationCode matches CodeBadVerificationCode.
	ErrBadVerificationCode = &OAuthError{Code: CodeBadVerificationCode}
	// ErrIncorrectClientCredentials matches CodeIncorrectClientCredentials.
	ErrIncorrectClientCredentials = &OAuthError{Code: CodeIncorrectClientCredentials}
	// ErrRedirectURIMismatch matches CodeRedirectURIMismatch.
	ErrRedirectURIMismatch = &OAuthError{Code: CodeRedirectURIMismatch}
	// ErrUnverifiedUserEmail matches CodeUnverifiedUserEmail.
	ErrUnverifiedUserEmail = &OAuthError{Code: CodeUnverifiedUserEmail}
)

// OAuthError is an error GitHub's token endpoint reported in its body
// (RFC 6749 §5.2 fields; GitHub sends them with HTTP 200).
type OAuthError struct {
	// Code is the "error" field, e.g. CodeBadVerificationCode.
	Code string
	// Description is the "error_description" field.
	Description string
	// URI is the "error_uri" field.
	URI string
}

// Error describes the token endpoint's answer.
func (e *OAuthError) Error() string {
	s := "github: token endpoint: " + e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// Is reports whether target is an *OAuthError with the same Code, so the
// Err… sentinels match.
func (e *OAuthError) Is(target error) bool {
	t, ok := target.(*OAuthError)
	return ok && t.Code == e.Code
}

// AuthCodeURL returns the GitHub authorize URL that starts a sign-in: the
// scopes "read:org user:email", state, redirect_uri, a PKCE S256 code_challenge derived from
// verifier (RFC 7636 §4.2; GitHub supports only S256) when verifier is not
// empty, login=loginHint, GitHub's suggested account, when loginHint is
// not empty, and prompt=select_account, GitHub's account picker, when
// selectAccount is set. GitHub has no way to make a person re-enter their
// password: an app they already authorized is approved again silently,
// and the account picker is the most a relying party can ask for.
func (c *Client) AuthCodeURL(state, verifier, loginHint string, selectAccount bool) string {
	var opts []oauth2.AuthCodeOption
	if selectAccount {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "select_account"))
	}
	if verifier != "" {
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	if loginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login", loginHint))
	}
	return c.oauth.AuthCodeURL(state, opts...)
}

// Exchange trades the code from GitHub's redirect (and the PKCE verifier
// given to AuthCodeURL, if any) for a GitHub access token.
//
// Errors: an *OAuthError (match with the Err… sentinels) for an error GitHub
// reported, an *UnavailableError for a 5xx, timeout or connection failure,
// a *RateLimitError, or an *APIError (ErrMalformedResponse) for an answer
// that is neither a token nor an error.
func (c *Client) Exchange(ctx context.Context, code, verifier string) (string, error) {
	rt := &tokenTransport{base: c.http.Transport, userAgent: c.userAgent}
	if rt.base == nil {
		rt.base = http.DefaultTransport
	}
	hc := *c.http
	hc.Transport = rt
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &hc)

	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	tok, err := c.oauth.Exchange(ctx, code, opts...)
	if err != nil {
		err = c.tokenError(ctx, err, rt)
		c.log.DebugContext(ctx, "github: code exchange failed", "error", err)
		return "", err
	}
	return tok.AccessToken, nil
}

// tokenError translates what x/oauth2 returned for a failed exchange.
func (c *Client) tokenError(ctx context.Context, err error, rt *tokenTransport) error {
	path := c.web.Path + tokenPath
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return &OAuthError{Code: re.ErrorCode, Description: truncate(re.ErrorDescription), URI: re.ErrorURI}
		}
		if re.Response != nil {
			if e := c.statusError(re.Response, path, re.Body); e != nil {
				return e
			}
		}
		return malformed(0, path, "token endpoint failed without an error code")
	}
	status, readErr := rt.result()
	var ue *url.Error
	if errors.As(err, &ue) || readErr != nil {
		return c.transportError(ctx, path, err)
	}
	// A 2xx that is neither a token nor an OAuth error: x/oauth2 reports
	// it as an untyped parse or "missing access_token" error.
	return malformed(status, path, fmt.Sprintf("token response has no access token: %v", err))
}

// tokenTransport adapts requests to GitHub's token endpoint and records what
// came back. GitHub answers in application/x-www-form-urlencoded unless the
// request sends Accept: application/json (GitHub docs, "Authorizing OAuth
// apps", step 2); JSON keeps error fields and types unambiguous.
type tokenTransport struct {
	base      http.RoundTripper
	userAgent string

	mu      sync.Mutex
	status  int
	readErr error
}

// RoundTrip sets Accept and User-Agent on a copy of req and wraps the
// response body to notice read failures.
func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", t.userAgent)
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.status = resp.StatusCode
	t.mu.Unlock()
	resp.Body = &watchedBody{ReadCloser: resp.Body, t: t}
	return resp, nil
}

// result returns the last status and any body read error.
func (t *tokenTransport) result() (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status, t.readErr
}

// watchedBody records a read error other than io.EOF on its transport.
type watchedBody struct {
	io.ReadCloser
	t *tokenTransport
}

// Read reads from the body and records a failure.
func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.t.mu.Lock()
		b.t.readErr = err
		b.t.mu.Unlock()
	}
	return n, err
}

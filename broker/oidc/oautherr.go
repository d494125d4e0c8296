package oidc

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/ghbroker/ghbroker/broker/internal/page"
)

// oauthError is an OAuth 2.0 error response (RFC 6749 §5.2, §4.1.2.1).
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// Status is the HTTP status at the token-like endpoints.
	Status int `json:"-"`
	// basic marks an invalid_client answer to a client that used HTTP
	// Basic: it gets WWW-Authenticate (RFC 6749 §5.2).
	basic bool
	// retryAfter is set for temporarily_unavailable.
	retryAfter time.Duration
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func errInvalidRequest(desc string) *oauthError {
	return &oauthError{Code: "invalid_request", Description: desc, Status: http.StatusBadRequest}
}

func errInvalidGrant(desc string) *oauthError {
	return &oauthError{Code: "invalid_grant", Description: desc, Status: http.StatusBadRequest}
}

func errInvalidClient(desc string, basic bool) *oauthError {
	return &oauthError{Code: "invalid_client", Description: desc, Status: http.StatusUnauthorized, basic: basic}
}

func errInvalidScope(desc string) *oauthError {
	return &oauthError{Code: "invalid_scope", Description: desc, Status: http.StatusBadRequest}
}

func errUnsupportedGrant(desc string) *oauthError {
	return &oauthError{Code: "unsupported_grant_type", Description: desc, Status: http.StatusBadRequest}
}

func errServer() *oauthError {
	return &oauthError{Code: "server_error", Description: "the server failed; try again", Status: http.StatusInternalServerError}
}

// noStore sets the caching headers every token-bearing response needs
// (RFC 6749 §5.1).
func noStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// writeJSON writes v with status, headers first.
func writeJSON(w http.ResponseWriter, status int, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		status, raw = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	noStore(h)
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

// writeOAuthError is the one writer of OAuth JSON errors. Any error that is
// not an *oauthError is logged and becomes a generic server_error.
func (p *Provider) writeOAuthError(w http.ResponseWriter, r *http.Request, err error) {
	oe, ok := err.(*oauthError)
	if !ok {
		p.log.Error("internal error", "path", r.URL.Path, "request_id", page.RequestID(r.Context()), "err", err)
		oe = errServer()
	}
	if oe.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+p.issuer+`"`)
	}
	if oe.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(oe.retryAfter.Seconds())))
	}
	writeJSON(w, oe.Status, oe)
}

// Package oauth is the OAuth 2.0 plumbing that the broker's token-like
// endpoints share: error values and their one writer, bounded form
// parsing, and the static client registry with client authentication.
//
// It owns the wire shape of errors (RFC 6749 §5.2) and who a calling
// client is (RFC 6749 §2.3). It does not own any endpoint: broker/oidc
// (/token, /revoke, /introspect) and broker/device (/device/code) import
// it, and neither imports the other.
package oauth

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ghbroker/ghbroker/broker/internal/page"
	"github.com/ghbroker/ghbroker/store"
)

// MaxFormBytes bounds the body of every OAuth POST endpoint.
const MaxFormBytes = 64 << 10

// Error is an OAuth 2.0 error response (RFC 6749 §5.2, §4.1.2.1;
// RFC 8628 §3.5).
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// Status is the HTTP status at the token-like endpoints.
	Status int `json:"-"`
	// Basic marks an invalid_client answer to a client that used HTTP
	// Basic: it gets WWW-Authenticate (RFC 6749 §5.2).
	Basic bool `json:"-"`
	// RetryAfter is set for temporarily_unavailable.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// InvalidRequest is RFC 6749's invalid_request.
func InvalidRequest(desc string) *Error {
	return &Error{Code: "invalid_request", Description: desc, Status: http.StatusBadRequest}
}

// InvalidGrant is RFC 6749's invalid_grant.
func InvalidGrant(desc string) *Error {
	return &Error{Code: "invalid_grant", Description: desc, Status: http.StatusBadRequest}
}

// InvalidClient is RFC 6749's invalid_client; basic says whether the client
// tried HTTP Basic.
func InvalidClient(desc string, basic bool) *Error {
	return &Error{Code: "invalid_client", Description: desc, Status: http.StatusUnauthorized, Basic: basic}
}

// InvalidScope is RFC 6749's invalid_scope.
func InvalidScope(desc string) *Error {
	return &Error{Code: "invalid_scope", Description: desc, Status: http.StatusBadRequest}
}

// UnauthorizedClient is RFC 6749's unauthorized_client: the client may not
// use this grant.
func UnauthorizedClient(desc string) *Error {
	return &Error{Code: "unauthorized_client", Description: desc, Status: http.StatusBadRequest}
}

// UnsupportedGrant is RFC 6749's unsupported_grant_type.
func UnsupportedGrant(desc string) *Error {
	return &Error{Code: "unsupported_grant_type", Description: desc, Status: http.StatusBadRequest}
}

// Server is the generic server_error every unexpected failure becomes.
func Server() *Error {
	return &Error{Code: "server_error", Description: "the server failed; try again", Status: http.StatusInternalServerError}
}

// StoreRetryAfter is the Retry-After of an answer given while the store is
// unavailable: long enough for an etcd leader election.
const StoreRetryAfter = 5 * time.Second

// Unavailable is the error for a request the store could not serve in
// time (store.ErrUnavailable): 503 with Retry-After, never a 500.
func Unavailable() *Error {
	return &Error{Code: "temporarily_unavailable", Description: "the broker's store is unavailable; retry later",
		Status: http.StatusServiceUnavailable, RetryAfter: StoreRetryAfter}
}

// NoStore sets the caching headers every token-bearing response needs
// (RFC 6749 §5.1).
func NoStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// WriteJSON writes v with status, headers first.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		status, raw = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	NoStore(h)
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

// WriteError is the one writer of OAuth JSON errors. Any error that is not
// an *Error is logged and becomes a generic server_error. realm is the
// issuer, named in WWW-Authenticate.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, realm string, err error) {
	oe, ok := err.(*Error)
	switch {
	case ok:
	case errors.Is(err, store.ErrUnavailable):
		log.Warn("store unavailable: answering 503", "path", r.URL.Path, "request_id", page.RequestID(r.Context()), "err", err)
		oe = Unavailable()
	default:
		log.Error("internal error", "path", r.URL.Path, "request_id", page.RequestID(r.Context()), "err", err)
		oe = Server()
	}
	if oe.Basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
	}
	if oe.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(oe.RetryAfter.Seconds())))
	}
	WriteJSON(w, oe.Status, oe)
}

// ReadForm parses a bounded application/x-www-form-urlencoded POST body
// and refuses repeated parameters (RFC 6749 §3.2).
func ReadForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost {
		return nil, InvalidRequest("use POST")
	}
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		return nil, InvalidRequest("the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, InvalidRequest("the form could not be read (too large or malformed)")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, InvalidRequest(k + " appears more than once")
		}
	}
	return r.PostForm, nil
}

// Package page is what every broker handler that answers people shares:
// the request id, the security headers of an HTML page, rendering a
// template without sending half a page, the problem page, and the Router
// that domain handlers mount themselves on. It holds no state of its own.
package page

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ghbroker/ghbroker/broker/internal/secret"
	"github.com/ghbroker/ghbroker/store"
	"github.com/ghbroker/ghbroker/web"
)

// Router is where a domain handler mounts its routes. The broker's router
// (the only code that imports gorilla/mux) implements it.
type Router interface {
	// Page mounts a handler for people: instrumented, its body bounded.
	Page(route, path string, h http.HandlerFunc, methods ...string)
	// API mounts a machine endpoint: instrumented.
	API(route, path string, h http.Handler, methods ...string)
}

type ctxKey int

const requestIDKey ctxKey = 0

// WithRequestID takes the gateway's X-Request-Id when it is a sane token,
// or makes one, and puts it in the context and the response.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !saneID(id) {
			id = secret.Random(9)
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

func saneID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// RequestID is the request's id (empty outside WithRequestID).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// Headers sets what every HTML page carries, before WriteHeader.
func Headers(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY") // for browsers that predate frame-ancestors
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

// Renderer writes the broker's pages.
type Renderer struct {
	pages *web.Pages
	log   *slog.Logger
}

// NewRenderer parses the templates once.
func NewRenderer(log *slog.Logger) (*Renderer, error) {
	p, err := web.Parse()
	if err != nil {
		return nil, fmt.Errorf("broker: templates: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Renderer{pages: p, log: log}, nil
}

// Render writes a page with status. Rendering happens into a buffer first,
// so that a template failure becomes a clean 500 rather than half a page.
func (rd *Renderer) Render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := rd.pages.Render(&buf, name, data); err != nil {
		rd.log.Error("rendering page failed", "page", name, "request_id", RequestID(r.Context()), "err", err)
		status, buf = http.StatusInternalServerError, *bytes.NewBufferString("internal error\n")
	}
	Headers(w.Header())
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Problem renders an error page for a person. A 503 carries Retry-After.
func (rd *Renderer) Problem(w http.ResponseWriter, r *http.Request, status int, p web.Problem, retryAfter time.Duration) {
	p.RequestID = RequestID(r.Context())
	if p.Home == "" {
		p.Home = "/"
	}
	if status == http.StatusServiceUnavailable {
		secs := max(int(retryAfter.Round(time.Second).Seconds()), 1)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		p.RetryAfter = HumanDuration(time.Duration(secs) * time.Second)
	}
	rd.Render(w, r, status, "problem.html", p)
}

// storeRetryAfter is the Retry-After of a page shown while the store is
// unavailable.
const storeRetryAfter = 5 * time.Second

// Internal logs err and shows a page that leaks nothing of it: 503 with
// Retry-After when the store was unavailable (store.ErrUnavailable), 500
// otherwise.
func (rd *Renderer) Internal(w http.ResponseWriter, r *http.Request, doing string, err error) {
	if errors.Is(err, store.ErrUnavailable) {
		rd.log.Warn("store unavailable: answering 503", "doing", doing, "request_id", RequestID(r.Context()), "err", err)
		rd.Problem(w, r, http.StatusServiceUnavailable, web.Problem{
			Title:   "Temporarily unavailable",
			Message: "ghbroker cannot reach its store right now, while " + doing + ". Nothing was lost; please try again in a few seconds.",
			Retry:   "/login",
		}, storeRetryAfter)
		return
	}
	rd.log.Error("internal error", "doing", doing, "request_id", RequestID(r.Context()), "err", err)
	rd.Problem(w, r, http.StatusInternalServerError, web.Problem{
		Title:   "Something went wrong",
		Message: "ghbroker failed while " + doing + ". Please try again; if it keeps failing, give your administrators the reference below.",
		Retry:   "/login",
	}, 0)
}

// BadSignIn is a 400 page for a sign-in that cannot continue.
func (rd *Renderer) BadSignIn(w http.ResponseWriter, r *http.Request, msg string) {
	rd.Problem(w, r, http.StatusBadRequest, web.Problem{
		Title: "Sign-in could not be completed", Message: msg + " Please start again.", Retry: "/login",
	}, 0)
}

// HumanDuration says d in words: "45 seconds", "3 minutes", "2 hours".
func HumanDuration(d time.Duration) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	round := func(unit time.Duration) int { return int((d + unit/2) / unit) }
	switch {
	case d < time.Minute:
		return plural(round(time.Second), "second")
	case d < time.Hour:
		return plural(round(time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(round(time.Hour), "hour")
	}
	return plural(round(24*time.Hour), "day")
}

// SecureIssuer reports whether cookies for issuer must be Secure: false
// only for a plain-http issuer (dev on loopback).
func SecureIssuer(issuer string) bool {
	return len(issuer) >= 8 && issuer[:8] == "https://"
}

// Unavailable answers 503 with a short plain-text reason and Retry-After.
// Used only for operational endpoints, whose callers are probes, scrapers
// and relying parties' JWKS fetches.
func Unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", "5")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(msg + "\n"))
}

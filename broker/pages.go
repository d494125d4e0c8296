package broker

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ghbroker/ghbroker/web"
)

type ctxKey int

const requestIDKey ctxKey = 0

// withRequestID takes the gateway's X-Request-Id when it is a sane token,
// or makes one, and puts it in the context and the response.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !saneID(id) {
			id = randomToken(9)
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

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// pageHeaders are set on every HTML page, before WriteHeader.
func pageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

// render writes a page with status. Rendering happens into a buffer first,
// so that a template failure becomes a clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages.Render(&buf, name, data); err != nil {
		s.opts.Logger.Error("rendering page failed", "page", name, "request_id", requestID(r.Context()), "err", err)
		status, buf = http.StatusInternalServerError, *bytes.NewBufferString("internal error\n")
	}
	pageHeaders(w.Header())
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// problem renders an error page for a person. A 503 carries Retry-After.
func (s *Server) problem(w http.ResponseWriter, r *http.Request, status int, p web.Problem, retryAfter time.Duration) {
	p.RequestID = requestID(r.Context())
	if p.Home == "" {
		p.Home = "/"
	}
	if status == http.StatusServiceUnavailable {
		secs := max(int(retryAfter.Round(time.Second).Seconds()), 1)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		p.RetryAfter = humanDuration(time.Duration(secs) * time.Second)
	}
	s.render(w, r, status, "problem.html", p)
}

// humanDuration says d in words: "45 seconds", "3 minutes", "2 hours".
func humanDuration(d time.Duration) string {
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

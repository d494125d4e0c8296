package githubfake

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Faults are failures injected into the emulator's answers, changeable at
// any time with [Server.SetFaults]. The zero value injects nothing.
type Faults struct {
	// Latency is added before every request is handled (web flow, token
	// endpoint and REST). It uses the real clock and honours the request
	// context: a client that gives up gets no answer.
	Latency time.Duration
	// ServerError answers every REST and token request with 502 and an HTML
	// body, like a GitHub outage.
	ServerError bool
	// RateLimited answers every authenticated REST request with GitHub's
	// primary rate-limit response: 403, x-ratelimit-remaining: 0 and the
	// "API rate limit exceeded" message.
	RateLimited bool
	// SecondaryRateLimit answers every authenticated REST request with the
	// secondary rate-limit response: 429, retry-after: 60 and the "secondary
	// rate limit" message. It wins over RateLimited.
	SecondaryRateLimit bool
	// BadJSON cuts every REST JSON body in half (status and headers as
	// usual; responses without a body are left alone).
	BadJSON bool
	// HugeBody answers every authenticated REST request with 200 and a JSON
	// array of at least 20 MiB.
	HugeBody bool
}

// hugeBodySize is the minimum size of the HugeBody answer.
const hugeBodySize = 20 << 20

// SetFaults replaces the injected faults; requests already past the fault
// checks are not affected.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

func (s *Server) currentFaults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// delay waits for the injected latency; it reports false if the request
// context ended first, in which case the caller writes nothing.
func (s *Server) delay(r *http.Request) bool {
	d := s.currentFaults().Latency
	if d <= 0 {
		return r.Context().Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// writeOutage answers like GitHub's front end when no backend is available.
func writeOutage(w http.ResponseWriter) {
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = w.Write([]byte(outagePage))
}

const outagePage = `<!DOCTYPE html>
<html>
  <head>
    <meta http-equiv="Content-type" content="text/html; charset=utf-8">
    <title>Unicorn! &middot; GitHub</title>
  </head>
  <body>
    <div class="container">
      <p><strong>No server is currently available to service your request.</strong></p>
      <p>Sorry about that. Please try refreshing and contact us if the problem persists.</p>
    </div>
  </body>
</html>
`

// writeHugeBody streams a syntactically valid JSON array of at least
// hugeBodySize bytes with an exact Content-Length.
func writeHugeBody(w http.ResponseWriter) {
	elem := []byte(`{"login":"padding","id":0,"padding":"` + strings.Repeat("x", 960) + `"}`)
	n := (hugeBodySize + len(elem)) / (len(elem) + 1)
	total := 2 + n*len(elem) + (n - 1)
	w.Header().Set("Content-Length", strconv.Itoa(total))
	w.WriteHeader(http.StatusOK)
	const perChunk = 64
	chunk := bytes.Repeat(append([]byte{','}, elem...), perChunk)
	if _, err := w.Write(append([]byte{'['}, elem...)); err != nil {
		return
	}
	for left := n - 1; left > 0; {
		k := min(left, perChunk)
		if _, err := w.Write(chunk[:k*(len(elem)+1)]); err != nil {
			return
		}
		left -= k
	}
	_, _ = w.Write([]byte{']'})
}

// truncateJSON returns the first half of a JSON body, which never parses.
func truncateJSON(b []byte) []byte {
	if len(b) < 2 {
		return b[:0]
	}
	return b[:len(b)/2]
}

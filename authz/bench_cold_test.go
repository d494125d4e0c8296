package authz_test

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkHTTPCheckCookieCold is BenchmarkHTTPCheckCookie with the caches
// cold, as under load, where the system calls between two checks evict
// the check's code and data: before each check it writes a buffer larger
// than the per-core caches, and only the check is timed. It reports
// handler-ns/op, the mean time of one check; the same-bytes handler is
// measured the same way.
func BenchmarkHTTPCheckCookieCold(b *testing.B) {
	hd, req := cookieCheck(b, cookieOpts{})
	evict := make([]byte, 4<<20) // written before each timed call: past a core's L2
	b.Run("check", func(b *testing.B) { benchCold(b, hd, req, evict) })
	b.Run("same bytes", func(b *testing.B) { benchCold(b, sameBytes(hd, req), req, evict) })
}

func benchCold(b *testing.B, h http.Handler, req *http.Request, evict []byte) {
	w := &discardWriter{h: http.Header{}}
	var took time.Duration
	n := 0
	for b.Loop() {
		for i := 0; i < len(evict); i += 64 {
			evict[i]++
		}
		clear(w.h)
		start := time.Now()
		h.ServeHTTP(w, req)
		took += time.Since(start)
		n++
	}
	b.ReportMetric(float64(took.Nanoseconds())/float64(n), "handler-ns/op")
}

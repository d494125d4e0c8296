package broker_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ghbroker/ghbroker/internal/githubfake"
)

// BenchmarkCallback measures /callback, the cold path: the code exchange,
// then user, emails, teams and memberships fetched concurrently, one store
// write and the session token. With latency injected on every GitHub call,
// "round-trips" is the callback's wall time in units of that latency (2 is
// ideal: the exchange, then one parallel batch) and "broker-ms" what is left
// once those two round trips are taken away.
func BenchmarkCallback(b *testing.B) {
	for _, lat := range []time.Duration{0, 50 * time.Millisecond} {
		b.Run("latency="+lat.String(), func(b *testing.B) {
			w := newWorld(b, worldOptions{})
			var total time.Duration
			for range b.N {
				b.StopTimer()
				w.gh.SetFaults(githubfake.Faults{})
				br := w.browser()
				cb := br.callbackURL()
				w.gh.SetFaults(githubfake.Faults{Latency: lat})
				b.StartTimer()
				start := time.Now()
				resp, body := br.get(cb)
				total += time.Since(start)
				if resp.StatusCode != http.StatusFound {
					b.Fatalf("callback: %d\n%s", resp.StatusCode, body)
				}
			}
			mean := total / time.Duration(b.N)
			b.ReportMetric(float64(mean.Microseconds())/1000, "ms/callback")
			if lat > 0 {
				b.ReportMetric(float64(mean)/float64(lat), "round-trips")
				b.ReportMetric(float64((mean-2*lat).Microseconds())/1000, "broker-ms")
			}
		})
	}
}

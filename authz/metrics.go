package authz

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// door is the front door a check arrived at, the "door" label.
type door int

const (
	doorHTTP door = iota // Ambassador/Envoy HTTP
	doorNginx
	doorTraefik
	doorGRPC
	doorCount
)

func (d door) String() string {
	switch d {
	case doorHTTP:
		return "http"
	case doorNginx:
		return "nginx"
	case doorTraefik:
		return "traefik"
	case doorGRPC:
		return "grpc"
	}
	return "unknown"
}

func doorOf(d Dialect) door {
	switch d {
	case DialectNginx:
		return doorNginx
	case DialectTraefik:
		return doorTraefik
	}
	return doorHTTP
}

// result is what a check answered, the "result" label.
type result int

const (
	resultAllow result = iota
	resultRedirect
	resultUnauthenticated
	resultForbidden
	resultPublic
	resultCount
)

func (r result) String() string {
	switch r {
	case resultAllow:
		return "allow"
	case resultRedirect:
		return "redirect"
	case resultUnauthenticated:
		return "unauthenticated"
	case resultForbidden:
		return "forbidden"
	case resultPublic:
		return "public"
	}
	return "unknown"
}

// durationBounds are the upper bounds of the check-duration histogram's
// buckets.
var durationBounds = [...]time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
}

// Metrics are the authz check's Prometheus metrics. A check is recorded
// with two atomic additions and no allocation: one count per door, result
// and duration bucket, from which the scrape sums both the decision
// counter and the histogram, and the duration's sum. A nil *Metrics
// records nothing.
type Metrics struct {
	reg    prometheus.Registerer
	now    func() time.Time
	checks *checkMetrics
}

// checkMetrics is the collector of the decision counter and the duration
// histogram.
type checkMetrics struct {
	decisions, durations *prometheus.Desc
	// counts[d][r][b]: checks answered at door d with result r whose
	// duration fell in bucket b (len(durationBounds): above the last bound).
	counts [doorCount][resultCount][len(durationBounds) + 1]atomic.Uint64
	nanos  [doorCount]atomic.Uint64 // the durations' sum
}

// NewMetrics registers with reg:
//
//   - ghbroker_authz_decisions_total{door,result}, door one of http, nginx,
//     traefik, grpc and result one of allow, redirect, unauthenticated,
//     forbidden, public;
//   - ghbroker_authz_check_duration_seconds{door}, a histogram from 50µs
//     to 100ms.
//
// A nil reg registers nowhere (for tests and tools).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	cm := &checkMetrics{
		decisions: prometheus.NewDesc("ghbroker_authz_decisions_total",
			"Authorization checks answered, by front door and result.", []string{"door", "result"}, nil),
		durations: prometheus.NewDesc("ghbroker_authz_check_duration_seconds",
			"Time to answer an authorization check, by front door.", []string{"door"}, nil),
	}
	if err := reg.Register(cm); err != nil {
		return nil, fmt.Errorf("authz: register metrics: %w", err)
	}
	return &Metrics{reg: reg, now: time.Now, checks: cm}, nil
}

// observe records one answered check.
func (m *Metrics) observe(d door, r result, took time.Duration) {
	if m == nil {
		return
	}
	b := 0
	for b < len(durationBounds) && took > durationBounds[b] {
		b++
	}
	m.checks.counts[d][r][b].Add(1)
	m.checks.nanos[d].Add(uint64(max(took, 0)))
}

func (c *checkMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.decisions
	ch <- c.durations
}

// Collect reports every door and result, zeros included, as the label
// children of a vector resolved at start would. A scrape racing a check
// may see its count before its duration's sum: the count and the buckets
// always agree.
func (c *checkMetrics) Collect(ch chan<- prometheus.Metric) {
	for d := range doorCount {
		var total uint64
		var perBucket [len(durationBounds) + 1]uint64
		for r := range resultCount {
			var n uint64
			for b := range perBucket {
				v := c.counts[d][r][b].Load()
				perBucket[b] += v
				n += v
			}
			total += n
			ch <- prometheus.MustNewConstMetric(c.decisions, prometheus.CounterValue, float64(n), d.String(), r.String())
		}
		sum := time.Duration(c.nanos[d].Load()).Seconds()
		buckets := make(map[float64]uint64, len(durationBounds))
		var cum uint64
		for b, le := range durationBounds {
			cum += perBucket[b]
			buckets[le.Seconds()] = cum
		}
		ch <- prometheus.MustNewConstHistogram(c.durations, total, sum, buckets, d.String())
	}
}

// ObserveVerifier registers the token verifier's cache statistics, read at
// scrape time: ghbroker_authz_cache_hits_total,
// ghbroker_authz_cache_misses_total and ghbroker_authz_cache_entries.
func (m *Metrics) ObserveVerifier(stats func() (hits, misses uint64, size int)) error {
	if m == nil || stats == nil {
		return nil
	}
	return registerCollectors(m.reg,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ghbroker_authz_cache_hits_total",
			Help: "Token verifications answered from the verifier's cache.",
		}, func() float64 { h, _, _ := stats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ghbroker_authz_cache_misses_total",
			Help: "Token verifications that needed a signature check.",
		}, func() float64 { _, mi, _ := stats(); return float64(mi) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ghbroker_authz_cache_entries",
			Help: "Verified tokens held in the verifier's cache.",
		}, func() float64 { _, _, n := stats(); return float64(n) }),
	)
}

// ObserveKeySetAge registers ghbroker_authz_keyset_age_seconds: the time
// since the verification keys were last loaded, +Inf before the first
// load (so that an alert on the age fires for a key set never loaded).
func (m *Metrics) ObserveKeySetAge(loadedAt func() time.Time) error {
	if m == nil || loadedAt == nil {
		return nil
	}
	return registerCollectors(m.reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ghbroker_authz_keyset_age_seconds",
		Help: "Seconds since the verification key set was last loaded.",
	}, func() float64 {
		t := loadedAt()
		if t.IsZero() {
			return math.Inf(1)
		}
		return m.now().Sub(t).Seconds()
	}))
}

func registerCollectors(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, fmt.Errorf("authz: register metrics: %w", err))
		}
	}
	return errors.Join(errs...)
}

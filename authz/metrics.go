package authz

import (
	"errors"
	"fmt"
	"math"
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

// Metrics are the authz check's Prometheus metrics. Every label child is
// resolved at construction, so recording a check does not allocate. A nil
// *Metrics records nothing.
type Metrics struct {
	reg       prometheus.Registerer
	now       func() time.Time
	decisions [doorCount][resultCount]prometheus.Counter
	durations [doorCount]prometheus.Observer
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
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ghbroker_authz_decisions_total",
		Help: "Authorization checks answered, by front door and result.",
	}, []string{"door", "result"})
	durations := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ghbroker_authz_check_duration_seconds",
		Help:    "Time to answer an authorization check, by front door.",
		Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3},
	}, []string{"door"})
	for _, c := range []prometheus.Collector{decisions, durations} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("authz: register metrics: %w", err)
		}
	}
	m := &Metrics{reg: reg, now: time.Now}
	for d := range doorCount {
		for r := range resultCount {
			m.decisions[d][r] = decisions.WithLabelValues(d.String(), r.String())
		}
		m.durations[d] = durations.WithLabelValues(d.String())
	}
	return m, nil
}

// observe records one answered check.
func (m *Metrics) observe(d door, r result, took time.Duration) {
	if m == nil {
		return
	}
	m.decisions[d][r].Inc()
	m.durations[d].Observe(took.Seconds())
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

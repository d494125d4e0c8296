package etcd

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus metrics. Label values come from the
// code (operation names) and the configuration (endpoints), never from a
// request.
type metrics struct {
	duration      *prometheus.HistogramVec
	failures      *prometheus.CounterVec
	unavailable   prometheus.Counter
	conflicts     prometheus.Counter
	exhausted     prometheus.Counter
	transient     prometheus.Counter
	leaseGrants   prometheus.Counter
	leaderChanges prometheus.Counter
	up            prometheus.Gauge
	endpointUp    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ghbroker_store_request_duration_seconds",
			Help:    "Time of store calls to etcd, retries included, by operation.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"op"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ghbroker_store_request_failures_total",
			Help: "Store calls that failed because etcd did not answer in time (answered as 503), by operation.",
		}, []string{"op"}),
		unavailable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ghbroker_store_unavailable_total",
			Help: "Store calls answered with store unavailable.",
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ghbroker_store_cas_conflicts_total",
			Help: "Transactions that lost a compare-and-swap to another writer and were retried.",
		}),
		exhausted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ghbroker_store_cas_exhausted_total",
			Help: "Read-modify-writes that gave up after their last allowed attempt.",
		}),
		transient: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ghbroker_store_transient_retries_total",
			Help: "Steps etcd refused for a moment (no leader, leader changed, no connection) and the store tried again.",
		}),
		leaseGrants: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ghbroker_store_lease_grants_total",
			Help: "Leases granted for expiring records; records that expire close together share one.",
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ghbroker_store_etcd_leader_changes_seen_total",
			Help: "Changes of the etcd leader this process has seen.",
		}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ghbroker_store_etcd_up",
			Help: "1 when an etcd endpoint answered the last status check and the cluster has a leader, else 0.",
		}),
		endpointUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ghbroker_store_etcd_endpoint_up",
			Help: "1 when the endpoint answered the last status check, else 0.",
		}, []string{"endpoint"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.duration, m.failures, m.unavailable, m.conflicts, m.exhausted, m.transient, m.leaseGrants, m.leaderChanges, m.up, m.endpointUp} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// observe records one store call.
func (m *metrics) observe(op string, d time.Duration, unavailable bool) {
	op = strings.ReplaceAll(op, " ", "_")
	m.duration.WithLabelValues(op).Observe(d.Seconds())
	if unavailable {
		m.failures.WithLabelValues(op).Inc()
		m.unavailable.Inc()
	}
}

// monitor asks every endpoint for its status every interval until ctx is
// done: it keeps the up gauges, counts leader changes and logs the
// transitions (cluster reachable or not, leader changed).
func (s *Store) monitor(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var leader uint64
	up := true // Open reached the cluster
	s.metrics.up.Set(1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		seen, answered := uint64(0), 0
		for _, ep := range s.endpoints {
			sctx, cancel := context.WithTimeout(ctx, min(every, 2*time.Second))
			st, err := s.cli.Status(sctx, ep)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				s.metrics.endpointUp.WithLabelValues(ep).Set(0)
				s.log.Debug("etcd endpoint did not answer its status check", "endpoint", ep, "err", err)
				continue
			}
			answered++
			s.metrics.endpointUp.WithLabelValues(ep).Set(1)
			if st.Leader != 0 {
				seen = st.Leader
			}
		}
		now := answered > 0 && seen != 0
		switch {
		case now && !up:
			s.log.Info("etcd is reachable again", "endpoints_up", answered, "endpoints", len(s.endpoints))
		case !now && up:
			s.log.Error("etcd is unreachable or has no leader: sign-ins and token requests answer 503 until it recovers; checks keep answering",
				"endpoints_up", answered, "endpoints", len(s.endpoints))
		}
		up = now
		if now {
			s.metrics.up.Set(1)
		} else {
			s.metrics.up.Set(0)
		}
		if seen != 0 && leader != 0 && seen != leader {
			s.metrics.leaderChanges.Inc()
			s.log.Warn("etcd leader changed", "old_leader", leader, "new_leader", seen)
		}
		if seen != 0 {
			leader = seen
		}
	}
}

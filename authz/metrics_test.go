package authz

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The scrape shows what the checks recorded: a decision per door and
// result, and each duration in the bucket a Prometheus histogram puts it
// in (le is inclusive; past the last bound only the count has it), with
// the durations' sum. Doors and results never seen are there with zeros,
// so that a rate has a series from the start.
func TestMetricsExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.observe(doorHTTP, resultAllow, 40*time.Microsecond)
	m.observe(doorHTTP, resultAllow, 50*time.Microsecond)
	m.observe(doorHTTP, resultForbidden, 60*time.Microsecond)
	m.observe(doorHTTP, resultRedirect, 200*time.Millisecond)
	m.observe(doorGRPC, resultUnauthenticated, 3*time.Millisecond)

	decisions, histograms := gatherCheckMetrics(t, reg)
	wantDecisions := map[string]float64{"http/allow": 2, "http/forbidden": 1, "http/redirect": 1, "grpc/unauthenticated": 1}
	for d := range doorCount {
		for r := range resultCount {
			k := d.String() + "/" + r.String()
			got, ok := decisions[k]
			if !ok || got != wantDecisions[k] {
				t.Errorf("decisions{%s} = %v (reported: %v), want %v", k, got, ok, wantDecisions[k])
			}
		}
	}
	bounds := []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3}
	for door, want := range map[string]struct {
		cumulative []uint64
		count      uint64
		sum        float64
	}{
		"http":    {[]uint64{2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3}, 4, 0.20015},
		"grpc":    {[]uint64{0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1}, 1, 0.003},
		"nginx":   {make([]uint64, 11), 0, 0},
		"traefik": {make([]uint64, 11), 0, 0},
	} {
		h := histograms[door]
		if h == nil {
			t.Errorf("no duration histogram for door %s", door)
			continue
		}
		var les []float64
		var cum []uint64
		for _, b := range h.GetBucket() {
			les, cum = append(les, b.GetUpperBound()), append(cum, b.GetCumulativeCount())
		}
		if !slices.Equal(les, bounds) || !slices.Equal(cum, want.cumulative) {
			t.Errorf("door %s: buckets %v %v, want %v %v", door, les, cum, bounds, want.cumulative)
		}
		if h.GetSampleCount() != want.count || math.Abs(h.GetSampleSum()-want.sum) > 1e-12 {
			t.Errorf("door %s: count %d sum %v, want %d %v", door, h.GetSampleCount(), h.GetSampleSum(), want.count, want.sum)
		}
	}
}

// gatherCheckMetrics returns the decision counters by "door/result" and the
// duration histograms by door.
func gatherCheckMetrics(t *testing.T, g prometheus.Gatherer) (map[string]float64, map[string]*dto.Histogram) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	decisions, histograms := map[string]float64{}, map[string]*dto.Histogram{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range mt.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			switch mf.GetName() {
			case "ghbroker_authz_decisions_total":
				decisions[l["door"]+"/"+l["result"]] = mt.GetCounter().GetValue()
			case "ghbroker_authz_check_duration_seconds":
				histograms[l["door"]] = mt.GetHistogram()
			}
		}
	}
	return decisions, histograms
}

package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const (
	alertsPath  = "monitoring/alerts.yaml"
	metricsDocs = "../docs/metrics.md"
)

// registeredMetrics reads the metric names the broker and the authz check
// register, from their sources (Name: "ghbroker_…" in a prometheus Opts,
// or prometheus.NewDesc("ghbroker_…" in a collector of its own);
// store/etcd registers the store's on the broker's registry.
func registeredMetrics(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(ghbroker_[a-z0-9_]+)"`)
	seen := map[string]bool{}
	for _, pkg := range []string{"broker", "authz", "store/etcd"} {
		files, err := filepath.Glob(filepath.Join(repoRoot, pkg, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			for _, m := range re.FindAllStringSubmatch(readText(t, f), -1) {
				seen[m[1]] = true
			}
		}
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// documentedMetrics reads the metric table of docs/metrics.md.
func documentedMetrics(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile("(?m)^\\| `(ghbroker_[a-z0-9_]+)`")
	var out []string
	for _, m := range re.FindAllStringSubmatch(readText(t, metricsDocs), -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}

func TestMetricsReferenceMatchesTheCode(t *testing.T) {
	code := registeredMetrics(t)
	docs := documentedMetrics(t)
	for _, want := range []string{
		"ghbroker_http_requests_total", "ghbroker_http_request_duration_seconds",
		"ghbroker_authz_decisions_total", "ghbroker_authz_check_duration_seconds",
		"ghbroker_authz_cache_hits_total", "ghbroker_authz_cache_misses_total",
		"ghbroker_authz_keyset_age_seconds",
	} {
		if !slices.Contains(code, want) {
			t.Errorf("%s is no longer registered by the code; the alerts and docs use it", want)
		}
	}
	for _, n := range code {
		if !slices.Contains(docs, n) {
			t.Errorf("%s is registered but not documented in docs/metrics.md", n)
		}
	}
	for _, n := range docs {
		if !slices.Contains(code, n) {
			t.Errorf("docs/metrics.md documents %s, which nothing registers", n)
		}
	}
}

func TestAlertRules(t *testing.T) {
	raw, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(raw, &file); err != nil {
		t.Fatalf("%s: %v", alertsPath, err)
	}
	known := registeredMetrics(t)
	metricRe := regexp.MustCompile(`ghbroker_[a-z0-9_]+`)
	names := map[string]bool{}
	count := 0
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			count++
			if r.Alert == "" || names[r.Alert] {
				t.Errorf("alert %q: empty or duplicate name", r.Alert)
			}
			names[r.Alert] = true
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("alert %s: severity %q", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("alert %s: no summary", r.Alert)
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") || strings.Count(r.Expr, "{") != strings.Count(r.Expr, "}") {
				t.Errorf("alert %s: unbalanced expression %q", r.Alert, r.Expr)
			}
			for _, m := range metricRe.FindAllString(r.Expr, -1) {
				base := m
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(m, suffix); ok && slices.Contains(known, b) {
						base = b
					}
				}
				if !slices.Contains(known, base) {
					t.Errorf("alert %s uses %s, which ghbroker does not export", r.Alert, m)
				}
			}
		}
	}
	if count == 0 {
		t.Fatalf("%s holds no alert", alertsPath)
	}
}

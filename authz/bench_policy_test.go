package authz

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ghbroker/ghbroker/claims"
)

// benchPolicy has n rules: most name one exact host with two team groups
// and an /admin path rule beside them, one in ten is a wildcard.
func benchPolicy(b *testing.B, n int) *Policy {
	b.Helper()
	cfg := PolicyConfig{Default: "deny"}
	for i := range n {
		switch {
		case i%10 == 9:
			cfg.Rules = append(cfg.Rules, RuleConfig{
				Hosts: []string{fmt.Sprintf("*.team%d.example.com", i)},
				Allow: AllowConfig{Groups: []string{fmt.Sprintf("acme/team-%d", i)}},
			})
		case i%2 == 1:
			cfg.Rules = append(cfg.Rules, RuleConfig{
				Hosts: []string{fmt.Sprintf("svc%d.example.com", i-1)},
				Paths: []string{"/admin", "/api/v1/admin"},
				Allow: AllowConfig{Users: []string{"root"}, Groups: []string{fmt.Sprintf("acme/admins-%d", i)}},
			})
		default:
			cfg.Rules = append(cfg.Rules, RuleConfig{
				Hosts: []string{fmt.Sprintf("svc%d.example.com", i)},
				Allow: AllowConfig{Groups: []string{fmt.Sprintf("acme/team-%d", i), "acme/sre"}},
			})
		}
	}
	p, err := CompilePolicy(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkEvaluate1000Rules measures the decision against 1,000 rules
// for a user in 40 teams whose admitting group comes last. Target: under
// 1 µs and 0 allocs/op.
func BenchmarkEvaluate1000Rules(b *testing.B) {
	p := benchPolicy(b, 1000)
	groups := []string{"acme"}
	for i := range 39 {
		groups = append(groups, fmt.Sprintf("acme/other-%d", i))
	}
	u := &claims.Claims{PreferredUsername: "alice", Groups: append(groups, "acme/team-500")}
	for _, bc := range []struct {
		name string
		req  Request
		c    *claims.Claims
		want Outcome
	}{
		{"exact", Request{Host: "svc500.example.com", Path: "/dashboards/abc"}, u, Allow},
		{"exact-path-rule", Request{Host: "svc500.example.com", Path: "/api/v1/admin/users"}, u, Forbidden},
		{"wildcard", Request{Host: "a.b.team509.example.com", Path: "/x"}, u, Forbidden},
		{"default", Request{Host: "nothing.example.org", Path: "/"}, u, Forbidden},
		{"no-credential", Request{Host: "svc500.example.com", Path: "/"}, nil, Unauthenticated},
		{"upper-case-host", Request{Host: "SVC500.Example.com", Path: "/dashboards/abc"}, u, Allow},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if d := p.Evaluate(bc.c, &bc.req, nil); d.Outcome != bc.want {
				b.Fatalf("Evaluate = %+v, want %v", d, bc.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = p.Evaluate(bc.c, &bc.req, nil)
			}
		})
	}
}

// BenchmarkEvaluateUncleanPath is a path not in normal form, refused
// before any rule.
func BenchmarkEvaluateUncleanPath(b *testing.B) {
	p := benchPolicy(b, 1000)
	u := &claims.Claims{PreferredUsername: "root"}
	req := Request{Host: "svc500.example.com", Path: "/x/../%61dmin/users"}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Evaluate(u, &req, nil)
	}
}

// BenchmarkEvaluateEscapedPath is a path in normal form with an escape
// (a space), which is decoded before matching and so allocates.
func BenchmarkEvaluateEscapedPath(b *testing.B) {
	p := benchPolicy(b, 1000)
	u := &claims.Claims{PreferredUsername: "root"}
	req := Request{Host: "svc500.example.com", Path: "/admin/my%20users"}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Evaluate(u, &req, nil)
	}
}

// BenchmarkEvaluateUnnormalizedOptOut is the worst case of a rule with
// insecure_allow_unnormalized_paths: a long path with every kind of
// oddity on a host with other rules, read every way an upstream might.
func BenchmarkEvaluateUnnormalizedOptOut(b *testing.B) {
	p, err := CompilePolicy(PolicyConfig{Rules: []RuleConfig{
		{Hosts: []string{"git.example.com"}, Paths: []string{"/api"}, Allow: AllowConfig{Users: []string{"root"}}, InsecureAllowUnnormalizedPaths: true},
		{Hosts: []string{"git.example.com"}, Allow: AllowConfig{Users: []string{"admin"}}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	u := &claims.Claims{PreferredUsername: "root"}
	req := Request{Host: "git.example.com", Path: "/api/v4/projects/a%2Fb;x=1/%252e/..\\c//d#e" + strings.Repeat("/segment", 115)}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Evaluate(u, &req, nil)
	}
}

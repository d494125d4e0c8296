package authz

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ghbroker/ghbroker/claims"
)

// testPolicyConfig is the policy most tests in this package run against.
func testPolicyConfig() PolicyConfig {
	return PolicyConfig{Default: "deny", Rules: []RuleConfig{
		{Hosts: []string{"grafana.example.com"}, Allow: AllowConfig{Groups: []string{"acme/sre", "acme/dev"}}},
		{Hosts: []string{"*.tools.example.com"}, Allow: AllowConfig{Groups: []string{"acme"}}},
		{Hosts: []string{"kibana.example.com"}, Paths: []string{"/admin"}, Allow: AllowConfig{Groups: []string{"acme/admins"}, Users: []string{"alice"}}},
		{Hosts: []string{"kibana.example.com"}, Allow: AllowConfig{Authenticated: true}},
		{Hosts: []string{"status.example.com"}, Public: true},
		{Hosts: []string{"*.example.com"}, Allow: AllowConfig{Groups: []string{"acme/all"}}},
		{Hosts: []string{"*.b.example.com"}, Allow: AllowConfig{Users: []string{"bob"}}},
		{Hosts: []string{"docs.example.com"}, Paths: []string{"/public/"}, Public: true},
		{Hosts: []string{"docs.example.com"}, Paths: []string{"/public/secret"}, Allow: AllowConfig{Groups: []string{"acme/sre"}}},
		{Hosts: []string{"api.example.com"}, Paths: []string{"/v1"}, Allow: AllowConfig{Users: []string{"carol"}}},
		{Hosts: []string{"api.example.com"}, Paths: []string{"/v1/admin"}, Allow: AllowConfig{Users: []string{"alice"}}},
		{Hosts: []string{"api.example.com"}, Paths: []string{"/v1/admin"}, Allow: AllowConfig{Users: []string{"bob"}}},
	}}
}

func mustPolicy(t testing.TB, p PolicyConfig) *Policy {
	t.Helper()
	cp, err := CompilePolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func testUser(login string, groups ...string) *claims.Claims {
	return &claims.Claims{PreferredUsername: login, Email: login + "@example.com", Groups: groups}
}

var (
	alice = testUser("alice", "acme", "acme/admins")
	bob   = testUser("bob", "acme")
	sre   = testUser("sre-user", "Acme", "Acme/SRE") // GitHub keeps the org's own case
	dave  = testUser("Dave", "acme", "acme/dev")
	eve   = testUser("eve", "acme", "acme/all")
	carol = testUser("CAROL")
)

func TestPolicyEvaluate(t *testing.T) {
	p := mustPolicy(t, testPolicyConfig())
	tests := []struct {
		name   string
		c      *claims.Claims
		host   string
		path   string
		want   Outcome
		public bool
		rule   string
	}{
		{"group member", sre, "grafana.example.com", "/", Allow, false, "members of acme/sre or acme/dev"},
		{"second group", dave, "grafana.example.com", "/d/abc", Allow, false, ""},
		{"not a member", bob, "grafana.example.com", "/", Forbidden, false, "members of acme/sre or acme/dev"},
		{"no credential", nil, "grafana.example.com", "/", Unauthenticated, false, ""},
		{"host case-insensitive", sre, "GRAFANA.Example.COM", "/", Allow, false, ""},
		{"wildcard org member", bob, "x.tools.example.com", "/", Allow, false, "members of acme"},
		{"wildcard deeper", bob, "a.x.tools.example.com", "/", Allow, false, ""},
		{"wildcard not bare domain", bob, "tools.example.com", "/", Forbidden, false, "members of acme/all"},
		{"less specific wildcard", eve, "tools.example.com", "/", Allow, false, ""},
		{"most specific wildcard first", eve, "a.b.example.com", "/", Forbidden, false, "bob"},
		{"most specific wildcard admits", bob, "a.b.example.com", "/", Allow, false, ""},
		{"bare domain: default deny", alice, "example.com", "/", Forbidden, false, descDefaultDeny},
		{"unknown host: default deny, no credential", nil, "other.org", "/", Unauthenticated, false, ""},
		{"path rule: user", alice, "kibana.example.com", "/admin", Allow, false, "members of acme/admins, or alice"},
		{"path rule: user case-insensitive", testUser("ALICE"), "kibana.example.com", "/admin", Allow, false, ""},
		{"path rule: group", testUser("x", "ACME/admins"), "kibana.example.com", "/admin/x", Allow, false, ""},
		{"path rule refuses", bob, "kibana.example.com", "/admin", Forbidden, false, "members of acme/admins, or alice"},
		{"path rule trailing slash", bob, "kibana.example.com", "/admin/", Forbidden, false, ""},
		{"path rule subpath", bob, "kibana.example.com", "/admin/users", Forbidden, false, ""},
		{"segment boundary", bob, "kibana.example.com", "/administrator", Allow, false, descAuthenticated},
		{"other path: authenticated", bob, "kibana.example.com", "/app/discover", Allow, false, ""},
		{"dot-dot", bob, "kibana.example.com", "/x/../admin", Forbidden, false, ""},
		{"dot", bob, "kibana.example.com", "/./admin", Forbidden, false, ""},
		{"double slash", bob, "kibana.example.com", "//admin", Forbidden, false, ""},
		{"encoded letter", bob, "kibana.example.com", "/%61dmin", Forbidden, false, ""},
		{"encoded slash", bob, "kibana.example.com", "/admin%2Fusers", Forbidden, false, ""},
		{"encoded dot-dot", bob, "kibana.example.com", "/x/%2e%2e/admin", Forbidden, false, ""},
		{"dot-dot above root", bob, "kibana.example.com", "/../../admin", Forbidden, false, ""},
		{"double encoding", bob, "kibana.example.com", "/%2561dmin", Forbidden, false, descBadPath},
		{"case-sensitive path", bob, "kibana.example.com", "/ADMIN", Allow, false, ""},
		{"bad escape: forbidden", bob, "kibana.example.com", "/%zz", Forbidden, false, descBadPath},
		{"bad escape, public host, no credential", nil, "status.example.com", "/%4", Forbidden, false, descBadPath},
		{"encoded NUL", alice, "kibana.example.com", "/admin%00", Forbidden, false, descBadPath},
		{"raw NUL", alice, "kibana.example.com", "/admin\x00", Forbidden, false, descBadPath},
		{"relative path", alice, "kibana.example.com", "admin", Forbidden, false, descBadPath},
		{"empty path is /", bob, "kibana.example.com", "", Allow, false, ""},
		{"public without credential", nil, "status.example.com", "/", Allow, true, descPublic},
		{"public with credential", bob, "status.example.com", "/x", Allow, true, ""},
		{"public path", nil, "docs.example.com", "/public/x", Allow, true, ""},
		{"public path exact", nil, "docs.example.com", "/public", Allow, true, ""},
		{"longer path inside public", nil, "docs.example.com", "/public/secret/y", Unauthenticated, false, ""},
		{"longer path inside public refuses", bob, "docs.example.com", "/public/secret", Forbidden, false, "members of acme/sre"},
		{"no path rule: next host pattern", eve, "docs.example.com", "/publicity", Allow, false, "members of acme/all"},
		{"no path rule: next host pattern refuses", bob, "docs.example.com", "/", Forbidden, false, "members of acme/all"},
		{"longest prefix regardless of order", alice, "api.example.com", "/v1/admin/x", Allow, false, "alice"},
		{"shorter prefix", carol, "api.example.com", "/v1/items", Allow, false, "carol"},
		{"longer prefix refuses", carol, "api.example.com", "/v1/admin", Forbidden, false, "alice"},
		{"equal prefixes: first rule wins", bob, "api.example.com", "/v1/admin", Forbidden, false, "alice"},
		{"empty login matches nothing", testUser(""), "kibana.example.com", "/admin", Forbidden, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(tt.c, &Request{Host: tt.host, Path: tt.path}, nil)
			if d.Outcome != tt.want || d.Public != tt.public {
				t.Errorf("Evaluate = %v (public %v), want %v (public %v); rule %q", d.Outcome, d.Public, tt.want, tt.public, d.Rule)
			}
			if tt.rule != "" && d.Rule != tt.rule {
				t.Errorf("Rule = %q, want %q", d.Rule, tt.rule)
			}
		})
	}
}

func TestPolicyDefaultAuthenticated(t *testing.T) {
	cfg := testPolicyConfig()
	cfg.Default = "authenticated"
	p := mustPolicy(t, cfg)
	if d := p.Evaluate(testUser("anyone"), &Request{Host: "unknown.org", Path: "/"}, nil); d.Outcome != Allow || d.Rule != descAuthenticated {
		t.Errorf("valid user on an unknown host = %+v, want allow", d)
	}
	if d := p.Evaluate(nil, &Request{Host: "unknown.org", Path: "/"}, nil); d.Outcome != Unauthenticated {
		t.Errorf("no credential on an unknown host = %+v, want unauthenticated", d)
	}
	// Rules still apply where they match.
	if d := p.Evaluate(bob, &Request{Host: "grafana.example.com", Path: "/"}, nil); d.Outcome != Forbidden {
		t.Errorf("bob on grafana = %+v, want forbidden", d)
	}
}

func TestPolicyEvaluateExtensions(t *testing.T) {
	p := mustPolicy(t, testPolicyConfig())
	tests := []struct {
		name string
		c    *claims.Claims
		host string
		ext  *Extensions
		want Outcome
		rule string // substring
	}{
		{"nil extensions", sre, "grafana.example.com", nil, Allow, ""},
		{"empty extensions", sre, "grafana.example.com", &Extensions{}, Allow, ""},
		{"group in both", sre, "grafana.example.com", &Extensions{AllowGroups: []string{"acme/sre"}}, Allow, ""},
		{"group case-insensitive", sre, "grafana.example.com", &Extensions{AllowGroups: []string{" ACME/sre "}}, Allow, ""},
		{"policy admits, extension does not", dave, "grafana.example.com", &Extensions{AllowGroups: []string{"acme/sre"}}, Forbidden, "and for this route members of acme/sre"},
		{"extension admits, policy does not", bob, "grafana.example.com", &Extensions{AllowGroups: []string{"acme"}}, Forbidden, "members of acme/sre or acme/dev"},
		{"user extension", dave, "grafana.example.com", &Extensions{AllowUsers: []string{"dave"}}, Allow, ""},
		{"user or group extension", dave, "grafana.example.com", &Extensions{AllowGroups: []string{"acme/sre"}, AllowUsers: []string{"x", "DAVE"}}, Allow, ""},
		{"no credential", nil, "grafana.example.com", &Extensions{AllowGroups: []string{"acme/sre"}}, Unauthenticated, ""},
		{"public narrowed: no credential", nil, "status.example.com", &Extensions{AllowGroups: []string{"acme"}}, Unauthenticated, ""},
		{"public narrowed: member", bob, "status.example.com", &Extensions{AllowGroups: []string{"acme"}}, Allow, ""},
		{"public narrowed: not member", testUser("x"), "status.example.com", &Extensions{AllowGroups: []string{"acme"}}, Forbidden, "members of acme (for this route)"},
		{"default deny stays", alice, "unknown.org", &Extensions{AllowUsers: []string{"alice"}}, Forbidden, descDefaultDeny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(tt.c, &Request{Host: tt.host, Path: "/"}, tt.ext)
			if d.Outcome != tt.want {
				t.Errorf("Evaluate = %+v, want %v", d, tt.want)
			}
			if d.Public && tt.ext != nil && len(tt.ext.AllowGroups)+len(tt.ext.AllowUsers) > 0 {
				t.Errorf("Public = true for a narrowed rule")
			}
			if !strings.Contains(d.Rule, tt.rule) {
				t.Errorf("Rule = %q, want it to contain %q", d.Rule, tt.rule)
			}
		})
	}
}

func TestPolicyKnowsHost(t *testing.T) {
	p := mustPolicy(t, testPolicyConfig())
	for host, want := range map[string]bool{
		"grafana.example.com":       true,
		"Grafana.Example.com":       true,
		"x.tools.example.com":       true,
		"tools.example.com":         true, // through *.example.com
		"anything.example.com":      true,
		"example.com":               false,
		"evil.com":                  false,
		"grafana.example.com.evil":  false,
		"evilexample.com":           false,
		"":                          false,
		".example.com":              true, // a "" label under *.example.com; parseHost never produces it
		"status.example.com":        true,
		"grafana.example.com:443":   false,
		"grafana.example.com.":      false,
		"a.b.c.d.e.f.g.example.com": true,
	} {
		if got := p.KnowsHost(host); got != want {
			t.Errorf("KnowsHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestPolicyRootPathRule(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{Rules: []RuleConfig{
		{Hosts: []string{"a.example.com"}, Allow: AllowConfig{Users: []string{"alice"}}},
		{Hosts: []string{"a.example.com"}, Paths: []string{"/"}, Allow: AllowConfig{Users: []string{"bob"}}},
	}})
	// "/" covers every path and is longer than no path at all.
	for _, path := range []string{"/", "/x", "/x/y"} {
		if d := p.Evaluate(bob, &Request{Host: "a.example.com", Path: path}, nil); d.Outcome != Allow {
			t.Errorf("bob %s = %+v, want allow", path, d)
		}
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		in, want string
		form     pathForm
	}{
		{"/", "/", pathNormal},
		{"", "/", pathNormal},
		{"/a/b/", "/a/b/", pathNormal},
		{"/.hidden/x", "/.hidden/x", pathNormal},
		{"/..x/y", "/..x/y", pathNormal},
		{"/x..", "/x..", pathNormal},
		{"/a%20b", "/a b", pathNormal},
		{"/caf%C3%A9", "/café", pathNormal},
		{"/café", "/café", pathNormal},
		{"/a+b:c@d!$&'()*,=", "/a+b:c@d!$&'()*,=", pathNormal},
		{"/a%2Bb", "/a+b", pathNormal},
		{"/a//b", "", pathUnnormalized},
		{"//a", "", pathUnnormalized},
		{"/a/./b", "", pathUnnormalized},
		{"/a/../b", "", pathUnnormalized},
		{"/a/..", "", pathUnnormalized},
		{"/a/.", "", pathUnnormalized},
		{"/..", "", pathUnnormalized},
		{"/a%2Fb", "", pathUnnormalized},
		{"/a%2fb", "", pathUnnormalized},
		{"/%2e%2E/a", "", pathUnnormalized},
		{"/%61dmin", "", pathUnnormalized},
		{"/a%7Eb", "", pathUnnormalized},
		{"/a%5Cb", "", pathUnnormalized},
		{`/a\b`, "", pathUnnormalized},
		{"/a;b", "", pathUnnormalized},
		{"/a%3Bb", "", pathUnnormalized},
		{"/a#b", "", pathUnnormalized},
		{"/a%23b", "", pathUnnormalized},
		{"/a%3Fb", "", pathUnnormalized},
		{"/a%252e", "", pathUnnormalized},
		{"/%C0%AE%C0%AE/a", "", pathUnnormalized},
		{"/\xc0\xae", "", pathUnnormalized},
		{"/%", "", pathMalformed},
		{"/%0", "", pathMalformed},
		{"/%g0", "", pathMalformed},
		{"/%00", "", pathMalformed},
		{"/a%0Ab", "", pathMalformed},
		{"/a b", "", pathMalformed},
		{"/a\x00", "", pathMalformed},
		{"/../%zz", "", pathMalformed}, // malformed outranks unnormalised
		{"x", "", pathMalformed},
		{"*", "", pathMalformed},
	}
	for _, tt := range tests {
		got, form := checkPath(tt.in)
		if got != tt.want || form != tt.form {
			t.Errorf("checkPath(%q) = %q, %v; want %q, %v", tt.in, got, form, tt.want, tt.form)
		}
	}
}

// TestPolicyOneMeaningPerPath is issue #13 finding 2: paths that an
// upstream routes to /admin while a normalising check read them as
// /public were allowed anonymously. Every such path is now refused before
// any rule, whoever asks.
func TestPolicyOneMeaningPerPath(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{Rules: []RuleConfig{
		{Hosts: []string{"app.example.com"}, Paths: []string{"/public"}, Public: true},
		{Hosts: []string{"app.example.com"}, Allow: AllowConfig{Groups: []string{"acme/admins"}}},
		{Hosts: []string{"win.example.com"}, Paths: []string{"/public"}, Public: true, CaseInsensitive: true},
		{Hosts: []string{"win.example.com"}, Paths: []string{"/admin"}, Allow: AllowConfig{Groups: []string{"acme/admins"}}, CaseInsensitive: true},
		{Hosts: []string{"win.example.com"}, Public: true},
	}})
	for _, path := range []string{
		"/admin/../public", "/admin%2F..%2Fpublic", "/admin/x/../../public/y",
		"/public/..;/admin", "/public/..\\admin", "/public/%252e%252e/admin", "/public/%2e%2e/admin",
		"/public//../admin", "/public/./../admin", "/public;/../admin", "/public%2F..%2Fadmin",
		"/public#/../../admin", "/public%3F/../admin", "/%70ublic/x",
	} {
		for _, c := range []*claims.Claims{nil, bob} {
			d := p.Evaluate(c, &Request{Host: "app.example.com", Path: path}, nil)
			if d.Outcome != Forbidden || !d.BadPath || d.Public {
				t.Errorf("%q (credential %v) = %+v, want forbidden as a bad path", path, c != nil, d)
			}
		}
	}
	// The same paths in normal form are decided by their rules.
	if d := p.Evaluate(nil, &Request{Host: "app.example.com", Path: "/public/y"}, nil); d.Outcome != Allow || !d.Public {
		t.Errorf("/public/y = %+v", d)
	}
	if d := p.Evaluate(nil, &Request{Host: "app.example.com", Path: "/admin"}, nil); d.Outcome != Unauthenticated {
		t.Errorf("/admin = %+v", d)
	}
	// Case: /ADMIN is not /admin to a case-sensitive rule; a
	// case_insensitive rule covers every spelling.
	for _, path := range []string{"/ADMIN", "/Admin/x", "/aDmIn/"} {
		if d := p.Evaluate(nil, &Request{Host: "win.example.com", Path: path}, nil); d.Outcome != Unauthenticated {
			t.Errorf("win %s = %+v, want unauthenticated (the admin rule)", path, d)
		}
	}
	if d := p.Evaluate(nil, &Request{Host: "win.example.com", Path: "/PUBLIC/x"}, nil); !d.Public {
		t.Errorf("win /PUBLIC/x = %+v, want public", d)
	}
	if d := p.Evaluate(nil, &Request{Host: "win.example.com", Path: "/administrator"}, nil); !d.Public {
		t.Errorf("win /administrator = %+v, want public (segment boundary)", d)
	}
}

func TestPolicyInsecureAllowUnnormalizedPaths(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{Rules: []RuleConfig{
		{Hosts: []string{"git.example.com"}, Paths: []string{"/api"}, Allow: AllowConfig{Groups: []string{"acme"}}, InsecureAllowUnnormalizedPaths: true},
		{Hosts: []string{"git.example.com"}, Paths: []string{"/public"}, Public: true, InsecureAllowUnnormalizedPaths: true},
		{Hosts: []string{"git.example.com"}, Paths: []string{"/admin"}, Allow: AllowConfig{Groups: []string{"acme/admins"}}},
		{Hosts: []string{"s3.example.com"}, Public: true, InsecureAllowUnnormalizedPaths: true},
	}})
	tests := []struct {
		host, path string
		c          *claims.Claims
		want       Outcome
		badPath    bool
	}{
		{"git.example.com", "/api/v4/projects/group%2Fproject", bob, Allow, false},
		{"git.example.com", "/api/v4/projects/group%2Fproject", nil, Unauthenticated, false},
		{"git.example.com", "/api//x;v=1", bob, Allow, false},
		{"git.example.com", "/public/a%2Fb", nil, Allow, false},
		// Readings that leave the rule are still refused.
		{"git.example.com", "/api/../admin", bob, Forbidden, true},
		{"git.example.com", "/api/..%2Fadmin", bob, Forbidden, true},
		{"git.example.com", "/public/..;/admin", nil, Forbidden, true},
		{"git.example.com", "/public/..%5Cadmin", nil, Forbidden, true},
		{"git.example.com", "/public/%252e%252e/admin", nil, Forbidden, true},
		{"git.example.com", "/public/x/../../api", nil, Forbidden, true}, // both opt-out rules, but two of them
		{"git.example.com", "/admin//x", alice, Forbidden, true},         // the admin rule does not opt out
		{"git.example.com", "/x//y", alice, Forbidden, true},             // policy.default does not either
		{"git.example.com", "/api/%00", bob, Forbidden, true},            // malformed is never admitted
		{"s3.example.com", "/bucket//key/../x", nil, Allow, false},
	}
	for _, tt := range tests {
		d := p.Evaluate(tt.c, &Request{Host: tt.host, Path: tt.path}, nil)
		if d.Outcome != tt.want || d.BadPath != tt.badPath {
			t.Errorf("%s%s = %+v, want %v (bad path %v)", tt.host, tt.path, d, tt.want, tt.badPath)
		}
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	p := mustPolicy(t, testPolicyConfig())
	cases := []struct {
		c   *claims.Claims
		req Request
	}{
		{sre, Request{Host: "grafana.example.com", Path: "/d/x"}},
		{sre, Request{Host: "Grafana.example.com", Path: "/d/x"}}, // upper case folded on the stack
		{bob, Request{Host: "a.x.tools.example.com", Path: "/"}},
		{bob, Request{Host: "kibana.example.com", Path: "/admin/x"}},
		{nil, Request{Host: "status.example.com", Path: "/"}},
		{alice, Request{Host: "unknown.org", Path: "/"}},
	}
	for _, tc := range cases {
		allocs := testing.AllocsPerRun(100, func() {
			_ = p.Evaluate(tc.c, &tc.req, nil)
		})
		if allocs != 0 {
			t.Errorf("Evaluate(%s%s) allocates %v times", tc.req.Host, tc.req.Path, allocs)
		}
	}
}

// ExamplePolicy_Evaluate shows a policy compiled from configuration and
// one decision.
func ExamplePolicy_Evaluate() {
	p, err := CompilePolicy(PolicyConfig{Default: "deny", Rules: []RuleConfig{
		{Hosts: []string{"grafana.example.com"}, Allow: AllowConfig{Groups: []string{"acme/sre", "acme/dev"}}},
		{Hosts: []string{"status.example.com"}, Public: true},
	}})
	if err != nil {
		panic(err)
	}
	bob := &claims.Claims{PreferredUsername: "bob", Groups: []string{"acme"}}
	d := p.Evaluate(bob, &Request{Host: "grafana.example.com", Path: "/"}, nil)
	fmt.Printf("%v: grafana.example.com requires %s\n", d.Outcome, d.Rule)
	d = p.Evaluate(nil, &Request{Host: "status.example.com", Path: "/"}, nil)
	fmt.Println(d.Outcome, d.Public)
	// Output:
	// forbidden: grafana.example.com requires members of acme/sre or acme/dev
	// allow true
}

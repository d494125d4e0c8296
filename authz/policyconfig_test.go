package authz

import (
	"errors"
	"strings"
	"testing"
)

func TestCompilePolicyErrors(t *testing.T) {
	ok := AllowConfig{Authenticated: true}
	var hostErr *HostPatternError
	tests := []struct {
		name     string
		p        PolicyConfig
		wantPath string // the *RuleError's Path, "" for the default
		want     any    // a sentinel for errors.Is, or a pointer for errors.As
	}{
		{"unknown default", PolicyConfig{Default: "allow"}, "", ErrUnknownDefault},
		{"no hosts", PolicyConfig{Rules: []RuleConfig{{Allow: ok}}}, "rules[0].hosts", ErrNoHosts},
		{"bad host", PolicyConfig{Rules: []RuleConfig{{Hosts: []string{"a.example.com", "exa mple.com"}, Allow: ok}}}, "rules[0].hosts[1]", &hostErr},
		{"relative path", PolicyConfig{Rules: []RuleConfig{{Hosts: []string{"a.com"}, Paths: []string{"admin"}, Allow: ok}}}, "rules[0].paths[0]", ErrPath},
		{"undecodable path", PolicyConfig{Rules: []RuleConfig{{Hosts: []string{"a.com"}, Paths: []string{"/", "/%zz"}, Allow: ok}}}, "rules[0].paths[1]", ErrPath},
		{"path with a dot segment", PolicyConfig{Rules: []RuleConfig{{Hosts: []string{"a.com"}, Paths: []string{"/x/../admin"}, Allow: ok}}}, "rules[0].paths[0]", ErrPath},
		{"path with an escaped letter", PolicyConfig{Rules: []RuleConfig{{Hosts: []string{"a.com"}, Paths: []string{"/%61dmin"}, Allow: ok}}}, "rules[0].paths[0]", ErrPath},
		{"path with a parameter", PolicyConfig{Rules: []RuleConfig{{Hosts: []string{"a.com"}, Paths: []string{"/admin;x"}, Allow: ok}}}, "rules[0].paths[0]", ErrPath},
		{"public and allow", PolicyConfig{Rules: []RuleConfig{{Hosts: []string{"a.com"}, Public: true, Allow: ok}}}, "rules[0].public", ErrPublicWithAllow},
		{"nobody", PolicyConfig{Rules: []RuleConfig{{Hosts: []string{"a.com"}, Allow: ok}, {Hosts: []string{"b.com"}}}}, "rules[1]", ErrNobodyAllowed},
		{"bad group", PolicyConfig{Rules: []RuleConfig{{Hosts: []string{"a.com"}, Allow: AllowConfig{Groups: []string{"acme", "acme:sre"}}}}}, "rules[0].allow.groups[1]", ErrGroup},
		{"group with two slashes", PolicyConfig{Rules: []RuleConfig{{Hosts: []string{"a.com"}, Allow: AllowConfig{Groups: []string{"acme/sre/x"}}}}}, "rules[0].allow.groups[0]", ErrGroup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompilePolicy(tt.p)
			if err == nil {
				t.Fatal("CompilePolicy accepted it")
			}
			if sentinel, ok := tt.want.(error); ok && !errors.Is(err, sentinel) {
				t.Errorf("error %v is not %v", err, sentinel)
			} else if !ok && !errors.As(err, tt.want) {
				t.Errorf("error %v is not a %T", err, tt.want)
			}
			var re *RuleError
			switch {
			case tt.wantPath == "" && errors.As(err, &re):
				t.Errorf("error %v is a *RuleError", err)
			case tt.wantPath != "" && !errors.As(err, &re):
				t.Errorf("error %v is not a *RuleError", err)
			case tt.wantPath != "" && re.Path() != tt.wantPath:
				t.Errorf("RuleError.Path() = %q, want %q", re.Path(), tt.wantPath)
			}
		})
	}
}

// TestCompilePolicyReportsEveryMistake: one error per mistake, so that a
// configuration check lists them all at once.
func TestCompilePolicyReportsEveryMistake(t *testing.T) {
	_, err := CompilePolicy(PolicyConfig{Default: "nope", Rules: []RuleConfig{
		{Hosts: []string{"a_b.example.com", "ok.example.com", "c%41.example.com"}, Allow: AllowConfig{Users: []string{"alice"}}},
		{Hosts: []string{"fine.example.com"}},
	}})
	var list interface{ Unwrap() []error }
	if !errors.As(err, &list) {
		t.Fatalf("error %v does not list its mistakes", err)
	}
	var paths []string
	for _, e := range list.Unwrap() {
		var re *RuleError
		if errors.As(e, &re) {
			paths = append(paths, re.Path())
		} else {
			paths = append(paths, "default")
		}
	}
	if got, want := strings.Join(paths, " "), "default rules[0].hosts[0] rules[0].hosts[2] rules[1]"; got != want {
		t.Errorf("mistakes at %s, want %s", got, want)
	}
}

func TestParseHostPattern(t *testing.T) {
	tests := []struct {
		in     string
		want   string // the normal form; "" when refused
		reason string // a part of the refusal's Reason
	}{
		{"grafana.example.com", "grafana.example.com", ""},
		{"*.example.com", "*.example.com", ""},
		{"*.tools.example.com", "*.tools.example.com", ""},
		{"Grafana.Example.COM", "grafana.example.com", ""},
		{"xn--bcher-kva.example.com", "xn--bcher-kva.example.com", ""},
		{"a-b.example.com", "a-b.example.com", ""},
		{"localhost", "localhost", ""},
		{"10.0.0.1", "10.0.0.1", ""},
		{"my_app.example.com", "", `"_"`},
		{"a%41.example.com", "", `"%"`},
		{"bücher.example.com", "", "xn--bcher-kva.example.com"},
		{"*.bücher.example.com", "", "*.xn--bcher-kva.example.com"},
		{"grafana.example.com.", "", "trailing dot is not allowed; write grafana.example.com"},
		{"*.", "", "followed by a domain"},
		{"*", "", "lone *"},
		{"*.*.example.com", "", "leftmost label"},
		{"a.*.example.com", "", "leftmost label"},
		{"*a.example.com", "", "leftmost label"},
		{"", "", "empty"},
		{" grafana.example.com", "", "spaces"},
		{"exa mple.com", "", "spaces"},
		{"grafana.example.com:8443", "", "write grafana.example.com"},
		{"[::1]:443", "", "port"},
		{"https://grafana.example.com", "", "without a scheme"},
		{".example.com", "", "empty label"},
		{"a..example.com", "", "empty label"},
		{"-a.example.com", "", "hyphen"},
		{"a-.example.com", "", "hyphen"},
		{strings.Repeat("a", 64) + ".example.com", "", "longer than 63"},
		{strings.Repeat("a.", 127) + "com", "", "longer than 253"},
		{"\xff.example.com", "", "not ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			h, err := ParseHostPattern(tt.in)
			var he *HostPatternError
			switch {
			case tt.want != "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && h.String() != tt.want:
				t.Errorf("= %q, want %q", h, tt.want)
			case tt.want == "" && !errors.As(err, &he):
				t.Errorf("= %q, %v; want a *HostPatternError", h, err)
			case tt.want == "" && !strings.Contains(he.Reason, tt.reason):
				t.Errorf("reason %q does not contain %q", he.Reason, tt.reason)
			}
		})
	}
}

func FuzzParseHostPattern(f *testing.F) {
	for _, s := range []string{"*.example.com", "bücher.example.com", "a_b.c", "x:1", "*.*.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHostPattern(s)
		if err != nil {
			return
		}
		// An accepted pattern is in normal form and parses to itself.
		again, err := ParseHostPattern(h.String())
		if err != nil || again != h || !validHostName(h.Domain) {
			t.Errorf("ParseHostPattern(%q) = %q, which reparses as %q, %v", s, h, again, err)
		}
	})
}

package deploy

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ghbroker/ghbroker/internal/config"
)

// TestCheckConfigCatchesCopyingMistakes: each mistake an operator is
// likely to make when adapting deploy/base/config.yaml is refused by
// check-config with the file, the line of the mistake and what is wrong.
func TestCheckConfigCatchesCopyingMistakes(t *testing.T) {
	base, err := os.ReadFile(baseConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) func(string) string {
		return func(s string) string {
			if !strings.Contains(s, old) {
				t.Fatalf("deploy/%s no longer contains %q", baseConfigPath, old)
			}
			return strings.Replace(s, old, new, 1)
		}
	}
	for _, tc := range []struct {
		name string
		edit func(string) string
		env  config.Env
		// wantLine is a text on the line the error must point at, after
		// the edit (its first occurrence at or after wantAfter).
		wantLine, wantAfter string
		wantMsg             string
	}{
		{
			name:     "issuer with http scheme",
			edit:     replace("issuer: https://auth.example.com", "issuer: http://auth.example.com"),
			wantLine: "issuer: http://auth.example.com", wantMsg: "https",
		},
		{
			name:     "cookie domain does not cover the issuer",
			edit:     replace("cookie_domain: .example.com", "cookie_domain: .tools.example.com"),
			wantLine: "cookie_domain: .tools.example.com", wantMsg: "does not cover the issuer",
		},
		{
			name:     "redirect domain missing for a protected host",
			edit:     replace("allowed_redirect_domains: [.example.com]", "allowed_redirect_domains: [grafana.example.com, kibana.example.com]"),
			wantLine: `- hosts: ["*.tools.example.com"]`, wantMsg: "allowed_redirect_domains",
		},
		{
			name:     "client without redirect URIs",
			edit:     replace("    redirect_uris: [https://grafana.example.com/login/generic_oauth]\n", ""),
			wantLine: "- id: grafana", wantMsg: "redirect_uris",
		},
		{
			name: "duplicate client ids",
			edit: replace("policy:\n", "  - id: grafana\n    secret_env: GRAFANA_OAUTH_SECRET\n    redirect_uris: [https://grafana.example.com/login/generic_oauth]\npolicy:\n"),
			// The second client's id line.
			wantLine: "- id: grafana", wantAfter: "post_logout_redirect_uris", wantMsg: "used twice",
		},
		{
			name:     "policy rule naming no hosts",
			edit:     replace("    - hosts: [status.example.com]\n      public: true\n", "    - paths: [/status]\n      public: true\n"),
			wantLine: "- paths: [/status]", wantMsg: "names no hosts",
		},
		{
			name:     "misspelt key",
			edit:     replace("allowed_orgs: [acme]", "allowed_org: [acme]"),
			wantLine: "allowed_org: [acme]", wantMsg: "allowed_org",
		},
		{
			name: "GitHub client secret not provided",
			edit: func(s string) string { return s },
			env: func(k string) (string, bool) {
				return map[string]string{"GRAFANA_OAUTH_SECRET": "x0123456789abcdef0123456789abcdef"}[k], k == "GRAFANA_OAUTH_SECRET"
			},
			wantLine: "github:", wantMsg: config.SecretEnv,
		},
		{
			name:     "client secret variable not set",
			edit:     func(s string) string { return s },
			env:      func(k string) (string, bool) { return "x", k == config.SecretEnv },
			wantLine: "secret_env: GRAFANA_OAUTH_SECRET", wantMsg: "GRAFANA_OAUTH_SECRET",
		},
		{
			name:     "two listeners on one port",
			edit:     replace(`grpc_listen: ":9001"`, `grpc_listen: ":8081"`),
			wantLine: `grpc_listen: ":8081"`, wantMsg: "already uses",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := tc.edit(string(base))
			env := tc.env
			if env == nil {
				env = testEnv
			}
			const name = "config.yaml"
			_, err := config.Parse(name, []byte(text), env)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("check-config accepted the mistake (err %v)", err)
			}
			wantLine := lineOf(t, text, tc.wantLine, tc.wantAfter)
			for _, p := range ce.Problems {
				if p.Line == wantLine && strings.Contains(p.Msg, tc.wantMsg) {
					if ce.File != name || !strings.Contains(ce.Error(), name+":"+strconv.Itoa(wantLine)+": ") {
						t.Errorf("the error does not read FILE:LINE: %q", ce.Error())
					}
					return
				}
			}
			t.Errorf("want a problem at line %d (%q) mentioning %q; got:\n%v", wantLine, tc.wantLine, tc.wantMsg, err)
		})
	}
}

// lineOf returns the 1-based line of the first occurrence of needle at or
// after the first occurrence of after.
func lineOf(t *testing.T, text, needle, after string) int {
	t.Helper()
	start := 0
	if after != "" {
		start = strings.Index(text, after)
	}
	i := strings.Index(text[start:], needle)
	if start < 0 || i < 0 {
		t.Fatalf("%q not found in the edited config", needle)
	}
	return strings.Count(text[:start+i], "\n") + 1
}

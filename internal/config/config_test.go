package config

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const minimal = `issuer: https://auth.example.com
github:
  client_id: Iv1.abc
  client_secret: s3cret
  allowed_orgs: [acme]
`

func env(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestMinimalGetsDefaults(t *testing.T) {
	c, err := Parse("min.yaml", []byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"listen", c.Listen, DefaultListen},
		{"bolt", c.Storage.Bolt.Path, DefaultBoltPath},
		{"github.url", c.GitHub.URL, DefaultGitHubURL},
		{"github.api_url", c.GitHub.APIURL, DefaultGitHubAPIURL},
		{"cookie", c.Session.CookieName, DefaultCookieName},
		{"alg", c.Keys.Algorithm, "RS256"},
		{"policy", c.Policy.Default, "deny"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if c.Session.TTL.D() != time.Hour || c.Session.MaxAge.D() != 168*time.Hour || c.Keys.RotateEvery.D() != 24*time.Hour {
		t.Errorf("durations: ttl %s max_age %s rotate %s", c.Session.TTL.D(), c.Session.MaxAge.D(), c.Keys.RotateEvery.D())
	}
}

func TestGHESDefaultsAPIBase(t *testing.T) {
	c, err := Parse("x.yaml", []byte(minimal+"  url: https://ghe.example.com/\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.GitHub.APIURL != "https://ghe.example.com/api/v3" {
		t.Errorf("api_url = %q", c.GitHub.APIURL)
	}
}

func TestSpecExampleIsValid(t *testing.T) {
	// The shape the README documents, with the secrets from the environment.
	const spec = `issuer: https://auth.example.com
listen: ":8080"
authz:
  listen: ":8081"
  grpc_listen: ":9001"
storage:
  bolt: { path: /var/lib/ghbroker/ghbroker.db }
github:
  client_id: Iv1.abc
  url: https://github.com
  api_url: https://api.github.com
  allowed_orgs: [acme]
session:
  cookie_domain: .example.com
  ttl: 1h
  max_age: 168h
  allowed_redirect_domains: [.example.com]
keys:
  algorithm: RS256
  rotate_every: 24h
clients:
  - id: grafana
    secret_env: GRAFANA_OAUTH_SECRET
    redirect_uris: [https://grafana.example.com/login/generic_oauth]
    name: Grafana
policy:
  default: deny
  rules:
    - hosts: [grafana.example.com]
      allow: { groups: ["acme/sre", "acme/dev"] }
    - hosts: ["*.tools.example.com"]
      allow: { groups: ["acme"] }
    - hosts: [kibana.example.com]
      paths: [/admin]
      allow: { groups: ["acme/admins"], users: [alice] }
    - hosts: [status.example.com]
      public: true
`
	c, err := Parse("spec.yaml", []byte(spec), env(map[string]string{
		SecretEnv: "gh-secret", "GRAFANA_OAUTH_SECRET": "graf-secret-0123456789abcdef012345",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.GitHub.ClientSecret != "gh-secret" || c.Clients[0].Secret != "graf-secret-0123456789abcdef012345" {
		t.Errorf("secrets not resolved: %q %q", c.GitHub.ClientSecret, c.Clients[0].Secret)
	}
	if got := c.Policy.Rules[2].Allow.Users; len(got) != 1 || got[0] != "alice" {
		t.Errorf("rules[2].allow.users = %v", got)
	}
}

func TestSecretFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(minimal, "client_secret: s3cret", "client_secret_file: "+f, 1)
	c, err := Parse("x.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.GitHub.ClientSecret != "from-file" {
		t.Errorf("secret = %q", c.GitHub.ClientSecret)
	}
	// The environment wins over the file.
	c, err = Parse("x.yaml", []byte(src), env(map[string]string{SecretEnv: "from-env"}))
	if err != nil || c.GitHub.ClientSecret != "from-env" {
		t.Errorf("secret = %q, err %v", c.GitHub.ClientSecret, err)
	}
}

// TestBadFiles: every mistake names the file, the line and what is wrong.
func TestBadFiles(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		want      string
	}{
		{"misspelt key", minimal + "keys:\n  rotate_evry: 1h\n", 7, `unknown key "rotate_evry" in keys (did you mean "rotate_every"?)`},
		{"unknown top-level key", "issuer: https://a.example.com\nisssuer: x\n", 2, `unknown key "isssuer"`},
		{"wrong type", minimal + "session:\n  ttl: [1h]\n", 7, "session.ttl must be a single value"},
		{"bad duration", minimal + "session:\n  ttl: 1 hour\n", 7, "session.ttl must be a duration"},
		{"bad bool", minimal + "clients:\n  - id: x\n    public: yes-please\n", 8, "must be true or false"},
		{"duplicate key", minimal + "listen: :1\nlisten: :2\n", 7, `key "listen" appears twice`},
		{"malformed yaml", "issuer: [unclosed\n", 1, "not valid YAML"},
		{"http issuer", strings.Replace(minimal, "https://auth", "http://auth", 1), 1, "issuer must use https"},
		{"issuer with query", strings.Replace(minimal, "example.com", "example.com/?x=1", 1), 1, "query or fragment"},
		{"no issuer", "github:\n  client_id: x\n  client_secret: y\n  allowed_orgs: [a]\n", 1, "issuer is required"},
		{"no client id", "issuer: https://a.example.com\ngithub:\n  allowed_orgs: [a]\n", 2, "github.client_id is required"},
		{"no orgs", strings.Replace(minimal, "  allowed_orgs: [acme]\n", "", 1), 2, "allowed_orgs must list"},
		{"missing secret file", strings.Replace(minimal, "client_secret: s3cret", "client_secret_file: /nonexistent/secret", 1), 4, "cannot read secret file /nonexistent/secret"},
		{"two secrets", minimal + "  client_secret_file: /x\n", 2, "more than one place"},
		{"bad algorithm", minimal + "keys:\n  algorithm: HS256\n", 7, "keys.algorithm must be one of RS256, ES256, EdDSA"},
		{"short rotation", minimal + "keys:\n  rotate_every: 10s\n", 7, "at least 1m"},
		{"ttl over max_age", minimal + "session:\n  ttl: 200h\n", 7, "must not be longer than session.max_age"},
		{"cookie domain misses issuer", minimal + "session:\n  cookie_domain: .example.org\n", 7, "does not cover the issuer's host"},
		{"bad redirect domain", minimal + "session:\n  allowed_redirect_domains: [https://x.example.com]\n", 7, "must be a host"},
		{"client without redirect", minimal + "clients:\n  - id: g\n    secret: s0123456789abcdef0123456789abcdef\n", 7, "needs at least one redirect_uris"},
		{"duplicate client", minimal + "clients:\n  - {id: g, secret: s0123456789abcdef0123456789abcdef, redirect_uris: [https://g.example.com/cb]}\n  - {id: g, secret: s0123456789abcdef0123456789abcdef, redirect_uris: [https://g.example.com/cb]}\n", 8, `client id "g" is used twice`},
		{"client secret env unset", minimal + "clients:\n  - {id: g, secret_env: NOPE, redirect_uris: [https://g.example.com/cb]}\n", 7, "environment variable NOPE is not set"},
		{"client without secret", minimal + "clients:\n  - {id: g, redirect_uris: [https://g.example.com/cb]}\n", 7, `client "g" needs a secret`},
		{"client token_ttl too long", minimal + "clients:\n  - {id: g, secret: s0123456789abcdef0123456789abcdef, token_ttl: 48h, redirect_uris: [https://g.example.com/cb]}\n", 7, "token_ttl must be between 1m and 24h0m0s"},
		{"redirect with fragment", minimal + "clients:\n  - {id: g, secret: s0123456789abcdef0123456789abcdef, redirect_uris: [\"https://g.example.com/cb#x\"]}\n", 7, "must not contain a fragment"},
		{"rule without hosts", minimal + "policy:\n  rules:\n    - allow: {groups: [acme]}\n", 8, "names no hosts"},
		{"rule letting nobody in", minimal + "session:\n  cookie_domain: .example.com\n  allowed_redirect_domains: [.example.com]\npolicy:\n  rules:\n    - hosts: [a.example.com]\n", 11, "lets nobody in"},
		{"host outside cookie domain", minimal + "session:\n  cookie_domain: .example.com\n  allowed_redirect_domains: [.example.com]\npolicy:\n  rules:\n    - hosts: [grafana.other.org]\n      allow: {groups: [acme]}\n", 11, "outside session.cookie_domain"},
		{"redirect domain missing", minimal + "session:\n  cookie_domain: .example.com\npolicy:\n  rules:\n    - hosts: [grafana.example.com]\n      allow: {groups: [acme]}\n", 10, "not under session.allowed_redirect_domains"},
		{"bad group", minimal + "session:\n  cookie_domain: .example.com\n  allowed_redirect_domains: [.example.com]\npolicy:\n  rules:\n    - hosts: [a.example.com]\n      allow: {groups: [\"acme:sre\"]}\n", 12, `must be "org" or "org/team-slug"`},
		{"host with underscore", minimal + "session:\n  cookie_domain: .example.com\n  allowed_redirect_domains: [.example.com]\npolicy:\n  rules:\n    - allow: {groups: [acme]}\n      hosts:\n        - a.example.com\n        - my_app.example.com\n", 14, `policy.rules[0].hosts[1]: "my_app.example.com" is not a host name`},
		{"unknown policy default", minimal + "policy:\n  default: allow\n", 7, `policy.default must be one of deny, authenticated, not "allow"`},
		{"public rule with allow_preflight", minimal + "policy:\n  rules:\n    - hosts: [auth.example.com]\n      public: true\n      allow_preflight: true\n      allow: {users: [alice]}\n", 9, "policy.rules[0].public: is public and also has allow"},
		{"same port twice", minimal + "authz:\n  listen: \":8080\"\n", 7, "which listen already uses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tt.src), nil)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say %q", msg, tt.want)
			}
			prefix := "bad.yaml:"
			if tt.line > 0 {
				prefix = "bad.yaml:" + strconv.Itoa(tt.line) + ": "
			}
			if !strings.Contains(msg, prefix) {
				t.Errorf("error %q does not point at %q", msg, prefix)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if err == nil || !strings.Contains(err.Error(), "nope.yaml: cannot read the config file") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("issuer: [\n"))
	f.Add([]byte("a: &x 1\nb: *x\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Parse("fuzz.yaml", raw, nil)
		if err == nil && c.Issuer == "" {
			t.Fatal("a config without issuer was accepted")
		}
	})
}

func TestLoadAuthzIgnoresBrokerSections(t *testing.T) {
	f := filepath.Join(t.TempDir(), "authz.yaml")
	src := "issuer: https://auth.example.com\ngithub:\n  client_id: x\n  allowed_orgs: [acme]\nclients:\n  - {id: g, secret_env: UNSET, redirect_uris: [https://g.example.com/cb]}\n"
	if err := os.WriteFile(f, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadAuthz(f, nil, "https://sso.example.com/")
	if err != nil {
		t.Fatalf("the broker-only sections must not fail the replica: %v", err)
	}
	if c.Issuer != "https://sso.example.com" {
		t.Errorf("issuer override: %q", c.Issuer)
	}
	if _, err := LoadAuthz(f, nil, "http://sso.example.com"); err == nil {
		t.Error("an http issuer was accepted for the replica")
	}
}

package config

import (
	"strings"
	"testing"
)

// TestClientGatewayAccess: clients[].gateway_access opts a client's access
// tokens in as gateway credentials; no client may take the id that is the
// gateway audience.
func TestClientGatewayAccess(t *testing.T) {
	c, err := Parse("ok.yaml", []byte(minimal+"clients:\n"+
		"  - {id: cli, public: true, grant_types: [device_code], gateway_access: true}\n"+
		"  - {id: g, secret: s0123456789abcdef0123456789abcdef, redirect_uris: [https://g.example.com/cb]}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Clients[0].GatewayAccess || c.Clients[1].GatewayAccess {
		t.Errorf("gateway_access = %v, %v; want true, false", c.Clients[0].GatewayAccess, c.Clients[1].GatewayAccess)
	}
	_, err = Parse("bad.yaml", []byte(minimal+"clients:\n  - {id: \"https://auth.example.com/gateway\", secret: s0123456789abcdef0123456789abcdef, redirect_uris: [https://g.example.com/cb]}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "marks gateway credentials") {
		t.Errorf("err = %v, want the gateway audience refused as a client id", err)
	}
}

// TestListenerLimits: listeners.* default to sane limits and refuse
// impossible ones.
func TestListenerLimits(t *testing.T) {
	c, err := Parse("ok.yaml", []byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listeners
	if l.ReadHeaderTimeout.D() != DefaultReadHeaderTimeout || l.ReadTimeout.D() != DefaultReadTimeout || l.WriteTimeout.D() != DefaultWriteTimeout ||
		l.IdleTimeout.D() != DefaultIdleTimeout || l.MaxConnections != DefaultMaxConnections {
		t.Errorf("defaults: %+v", l)
	}
	c, err = Parse("ok.yaml", []byte(minimal+"listeners: {read_header_timeout: 2s, read_timeout: 5s, max_connections: 100}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listeners.ReadHeaderTimeout.D().Seconds() != 2 || c.Listeners.MaxConnections != 100 || c.Listeners.WriteTimeout.D() != DefaultWriteTimeout {
		t.Errorf("set: %+v", c.Listeners)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"listeners: {read_timeout: 1s, read_header_timeout: 2s}\n", "must not be shorter than listeners.read_header_timeout"},
		{"listeners: {idle_timeout: -1s}\n", "listeners.idle_timeout must be a positive duration"},
		{"listeners: {max_connections: -5}\n", "listeners.max_connections must be at least 1"},
		{"listeners: {max_conections: 5}\n", `did you mean "max_connections"`},
	} {
		_, err := Parse("bad.yaml", []byte(minimal+tt.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.yaml, err, tt.want)
		}
	}
}

func TestAuthzDialect(t *testing.T) {
	c, err := Parse("ok.yaml", []byte(minimal+"authz: {listen: \":8081\", dialect: nginx}\n"), nil)
	if err != nil || c.Authz.Dialect != "nginx" {
		t.Fatalf("dialect %q, %v", c.Authz.Dialect, err)
	}
	_, err = Parse("bad.yaml", []byte(minimal+"authz: {listen: \":8081\", dialect: ambassador}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `authz.dialect must be "auto", "envoy", "nginx" or "traefik", not "ambassador"`) {
		t.Errorf("err = %v", err)
	}
}

// TestPolicyPathOptions: case_insensitive and
// insecure_allow_unnormalized_paths decode, and a rule path that is not in
// normal form is refused at its line.
func TestPolicyPathOptions(t *testing.T) {
	c, err := Parse("ok.yaml", []byte(minimal+`policy:
  rules:
    - hosts: [status.example.com]
      paths: [/Admin]
      case_insensitive: true
      insecure_allow_unnormalized_paths: true
      public: true
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Policy.Rules[0]; !r.CaseInsensitive || !r.InsecureAllowUnnormalizedPaths {
		t.Errorf("rule %+v", r)
	}
	_, err = Parse("bad.yaml", []byte(minimal+`policy:
  rules:
    - hosts: [status.example.com]
      paths: [/x/../admin]
      public: true
`), nil)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:9: policy.rules[0].paths[0]") || !strings.Contains(err.Error(), "in normal form") {
		t.Errorf("err = %v", err)
	}
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPolicyHostsCheckConfigAgreesWithServe runs check-config, serve and
// the authz replica on the same file for each host pattern: all three
// accept it, or all three refuse it with FILE:LINE pointing at the host.
// serve and authz run until they answer /healthz, so an accepted host has
// been through the whole start-up (config, keys, policy, listeners).
func TestPolicyHostsCheckConfigAgreesWithServe(t *testing.T) {
	tests := []struct {
		host string
		ok   bool
	}{
		{"grafana.example.com", true},
		{"*.example.com", true},
		{"*.tools.example.com", true},
		{"Grafana.Example.COM", true}, // host names are case-insensitive: folded
		{"xn--bcher-kva.example.com", true},
		{"my_app.example.com", false},
		{"a%41.example.com", false},
		{"bücher.example.com", false}, // IDN: write the A-label
		{"*.münchen.example.com", false},
		{"grafana.example.com.", false}, // trailing dot
		{"*.", false},
		{"*.*.example.com", false},
		{"a.*.example.com", false},
		{"*", false},
		{"", false},
		{"exa mple.example.com", false},
		{" grafana.example.com", false},
		{"grafana.example.com:443", false},
		{"grafana.example.com:8443", false},
		{"-grafana.example.com", false},
		{"https://grafana.example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			dir := t.TempDir()
			addr := freeAddr(t)
			path, hostLine := writePolicyConfig(t, dir, addr, tt.host)
			wantErr := path + ":" + strconv.Itoa(hostLine) + ": policy.rules[0].hosts[0]: "
			for _, args := range [][]string{
				{"check-config", "--config", path},
				{"serve", "--config", path},
				{"authz", "--config", path, "--jwks-url", "http://127.0.0.1:1/keys"},
			} {
				code, stderr := runUntilUp(t, addr, args...)
				switch {
				case tt.ok && code != 0:
					t.Errorf("%s refused %q: exit %d\n%s", args[0], tt.host, code, stderr)
				case !tt.ok && code != exitUsage:
					t.Errorf("%s: exit %d for %q, want %d\n%s", args[0], code, tt.host, exitUsage, stderr)
				case !tt.ok && !strings.Contains(stderr, wantErr):
					t.Errorf("%s refused %q without %q:\n%s", args[0], tt.host, wantErr, stderr)
				}
			}
		})
	}
}

// writePolicyConfig writes a working config whose one policy rule names
// host, and returns its path and the line of the host.
func writePolicyConfig(t *testing.T, dir, addr, host string) (string, int) {
	t.Helper()
	head := fmt.Sprintf(`issuer: https://auth.example.com
listen: %q
log: {format: text, level: warn}
storage:
  bolt: {path: %s}
github:
  client_id: test-client
  client_secret: test-secret
  allowed_orgs: [acme]
keys: {algorithm: ES256}
session:
  cookie_domain: .example.com
  allowed_redirect_domains: [.example.com]
policy:
  rules:
    - allow: {groups: [acme]}
`, addr, filepath.Join(dir, "ghbroker.db"))
	src := head + "      hosts:\n        - " + strconv.Quote(host) + "\n"
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, strings.Count(head, "\n") + 2
}

// runUntilUp runs a command in-process until it returns or answers
// /healthz on addr, then stops it, and returns its exit code and stderr.
func runUntilUp(t *testing.T, addr string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	e := env{stdout: &out, stderr: &errb, lookupEnv: func(string) (string, bool) { return "", false }}
	done := make(chan int, 1)
	go func() { done <- run(ctx, e, args) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case code := <-done:
			return code, errb.String()
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("%s neither returned nor answered /healthz within 30s", args[0])
		}
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return <-done, errb.String()
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

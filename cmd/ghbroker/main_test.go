package main

import (
	"bytes"
	"context"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary act as the ghbroker command, so that
// process tests (SIGKILL, restart) run the real main without a separate
// build.
func TestMain(m *testing.M) {
	if os.Getenv("GHBROKER_TEST_BE_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// runCmd runs a command in-process and returns its exit code and output.
func runCmd(t *testing.T, environ map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := env{stdout: &out, stderr: &errb, lookupEnv: func(k string) (string, bool) { v, ok := environ[k]; return v, ok }}
	code := run(context.Background(), e, args)
	return code, out.String(), errb.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", pickPort(t))
}

// pickPort returns a free loopback port below the kernel's ephemeral range
// (32768 and up on Linux), so that the outgoing connections of other tests
// cannot take it between the pick and the server's bind.
func pickPort(t *testing.T) int {
	t.Helper()
	for range 200 {
		p := 20000 + mathrand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// writeConfig writes a working config for a server on addr with its store
// in dir, plus extra YAML appended, and returns its path.
func writeConfig(t *testing.T, dir, addr, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`issuer: http://%s
listen: %q
log: {format: text, level: warn}
storage:
  bolt: {path: %s}
github:
  client_id: test-client
  client_secret: test-secret
  allowed_orgs: [acme]
`, addr, addr, filepath.Join(dir, "ghbroker.db")) + extra
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := writeConfig(t, dir, "127.0.0.1:1", "")
	if code, out, errs := runCmd(t, nil, "check-config", "--config", good); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("good config: exit %d, %q %q", code, out, errs)
	}

	bad := filepath.Join(dir, "bad.yaml")
	raw, _ := os.ReadFile(good)
	os.WriteFile(bad, append(raw, []byte("keys:\n  rotate_evry: 1h\n")...), 0o600)
	code, _, errs := runCmd(t, nil, "check-config", "--config", bad)
	if code != exitUsage {
		t.Errorf("misspelt key: exit %d, want 2", code)
	}
	if want := bad + ":11: unknown key \"rotate_evry\" in keys"; !strings.Contains(errs, want) {
		t.Errorf("stderr %q does not contain %q", errs, want)
	}
}

// TestBadInputExitCodes: every bad input ends in one clear sentence and the
// right exit code, never a panic or a stack trace.
func TestBadInputExitCodes(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	good := writeConfig(t, dir, addr, "")

	notBolt := filepath.Join(t.TempDir(), "not-a-store.db")
	os.WriteFile(notBolt, bytes.Repeat([]byte("this is not a bbolt file\n"), 1000), 0o600)
	notBoltCfg := writeConfig(t, t.TempDir(), addr, "")
	raw, _ := os.ReadFile(notBoltCfg)
	os.WriteFile(notBoltCfg, bytes.Replace(raw, []byte(filepath.Join(filepath.Dir(notBoltCfg), "ghbroker.db")), []byte(notBolt), 1), 0o600)

	secretCfg := filepath.Join(dir, "secret.yaml")
	raw, _ = os.ReadFile(good)
	os.WriteFile(secretCfg, bytes.Replace(raw, []byte("client_secret: test-secret"), []byte("client_secret_file: /nonexistent/gh-secret"), 1), 0o600)

	malformed := filepath.Join(dir, "malformed.yaml")
	os.WriteFile(malformed, []byte("issuer: [\n  - {\n"), 0o600)
	wrongType := filepath.Join(dir, "wrongtype.yaml")
	os.WriteFile(wrongType, append(raw, []byte("session:\n  ttl: {a: b}\n")...), 0o600)

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", nil, exitUsage, "no command given"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"serve without config", []string{"serve"}, exitUsage, "serve needs --config"},
		{"missing config file", []string{"serve", "--config", filepath.Join(dir, "nope.yaml")}, exitUsage, "cannot read the config file"},
		{"malformed yaml", []string{"check-config", "--config", malformed}, exitUsage, "not valid YAML"},
		{"wrong type", []string{"serve", "--config", wrongType}, exitUsage, "session.ttl must be a single value"},
		{"unreadable secret", []string{"serve", "--config", secretCfg}, exitUsage, "cannot read secret file /nonexistent/gh-secret"},
		{"store not bbolt", []string{"keys", "list", "--config", notBoltCfg}, exitRuntime, "is not a ghbroker store"},
		{"keys without sub", []string{"keys"}, exitUsage, "keys list|rotate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := runCmd(t, nil, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errs)
			}
			if !strings.Contains(errs, tt.want) {
				t.Errorf("stderr %q does not say %q", errs, tt.want)
			}
			if strings.Contains(errs, "goroutine ") || strings.Contains(errs, "panic") {
				t.Errorf("stack trace on stderr: %q", errs)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "ghbroker ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: %d %q", code, out)
	}
}
